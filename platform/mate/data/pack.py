"""The packed cache: a dataset read once into one float32 array file plus a compact index (docs/architecture.md §3.2).

Trials, evaluators and the sweep read `<workspace>/cache/packs/<content-hash>/`, never 30k small files; on a cluster
the pack folder is what travels to the nodes. Layout of a pack folder:

    motions.f32   every clip's feature rows concatenated, raw little-endian float32, C order, shape (rows, dim)
    index.npz     ids (U), offsets/lengths (int64/int32, rows), cap_ptr (clips+1: captions of clip i are
                  cap_ptr[i]:cap_ptr[i+1]), cap_rows (captions x 2: the rows [a, b) each caption covers),
                  text_ptr/text_blob (caption lines, UTF-8, re-formatted), split_<name> (int32 clip indices, file
                  order), mean/std (float32)
    meta.json     format, content hash, dataset name, dim, fps, counts, split names, source folder

The pack is keyed by a hash of the dataset files' bytes. So that a second open does not rehash 30k files, a small
alias (`aliases/<stat fingerprint>.json`, the fingerprint being every file's relative path, size and mtime_ns) maps to
the content hash; when any file changes its fingerprint changes and the dataset is rehashed. Building happens under
the alias's lock and `mate.cache.get_or_build` (written to a temporary folder, renamed into place), so concurrent
openers never see half a pack and never build it twice. Clips are read with pread into fresh arrays: the page cache
holds the file, and a process that reads all 30k clips keeps a small resident set (mmap pages it touched would count).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..cache import get_or_build, lock_for, note, write_json
from . import layout as L
from .captions import Caption, format_caption, parse_line, read_captions
from .errors import DatasetError

PACK_FORMAT = 1
MOTIONS = "motions.f32"
INDEX = "index.npz"
META = "meta.json"


def packs_dir(workspace: str | os.PathLike) -> Path:
    return Path(workspace) / "cache" / "packs"


def fingerprint(root: str | os.PathLike, files: list[str] | None = None) -> str:
    """Cheap identity of a dataset folder: its path and every file's relative path, size and mtime_ns."""
    root = os.fspath(Path(root).resolve())
    h = hashlib.sha256(f"{PACK_FORMAT}\0{root}\n".encode())
    for rel in files if files is not None else L.dataset_files(root):
        st = os.stat(os.path.join(root, rel))
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:24]


def dataset_hash(root: str | os.PathLike, files: list[str] | None = None, progress: bool = True) -> str:
    """Content hash of a dataset: sha256 over every pack input file's relative path and bytes (not its location)."""
    root = Path(root).resolve()
    files = files if files is not None else L.dataset_files(root)
    h = hashlib.sha256()
    for rel in tqdm(files, desc=f"hashing {root.name}", unit="file", disable=not progress, leave=False):
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:16]


def _split_ids(root: Path) -> dict[str, list[str]]:
    splits = {s: L.read_split(L.split_file(root, s)) for s in L.SPLITS}
    for s in L.COMP_SPLITS:
        if L.split_file(root, s).is_file():
            splits[s] = L.read_split(L.split_file(root, s))
    return splits


def build_pack(root: str | os.PathLike, out: str | os.PathLike, content_hash: str = "", progress: bool = True) -> None:
    """Read the dataset at `root` into a new pack folder `out` (streaming: one clip in memory at a time)."""
    root, out = Path(root), Path(out)
    t0 = time.perf_counter()
    for sub in (L.MOTION_DIR, L.TEXT_DIR):
        if not (root / sub).is_dir():
            raise DatasetError(f"missing folder {sub}/", root / sub)
    mean, std = L.load_stats(root)
    spec = L.spec_for_dim(mean.shape[0], root / L.MEAN_FILE)
    splits = _split_ids(root)
    ids = sorted({cid for v in splits.values() for cid in v})
    pos = {cid: i for i, cid in enumerate(ids)}
    n = len(ids)
    offsets, lengths = np.zeros(n, np.int64), np.zeros(n, np.int32)
    cap_ptr, cap_rows, text_ptr, blob = [0], [], [0], bytearray()
    out.mkdir(parents=True, exist_ok=True)
    rows = 0
    with open(out / MOTIONS, "wb") as f:
        for i, cid in enumerate(tqdm(ids, desc=f"packing {root.name}", unit="clip", disable=not progress)):
            m = L.load_motion(os.path.join(root, L.MOTION_DIR, cid + L.MOTION_EXT), spec.dim)
            tf = os.path.join(root, L.TEXT_DIR, cid + L.TEXT_EXT)
            if not os.path.isfile(tf):
                raise DatasetError(f"no caption file for clip {cid}", tf)
            caps = read_captions(tf)
            m.tofile(f)
            offsets[i], lengths[i] = rows, len(m)
            rows += len(m)
            for c in caps:
                cap_rows.append(c.rows(len(m), spec.fps))
                blob += format_caption(c).encode()
                text_ptr.append(len(blob))
            cap_ptr.append(len(cap_rows))
    arrays = dict(
        ids=np.array(ids, dtype=str) if ids else np.zeros(0, "U1"), offsets=offsets, lengths=lengths,
        cap_ptr=np.array(cap_ptr, np.int64), cap_rows=np.array(cap_rows, np.int32).reshape(-1, 2),
        text_ptr=np.array(text_ptr, np.int64), text_blob=np.frombuffer(bytes(blob), np.uint8),
        mean=mean, std=std,
        **{f"split_{s}": np.array([pos[c] for c in v], np.int32) for s, v in splits.items()},
    )
    with open(out / INDEX, "wb") as f:
        np.savez(f, **arrays)
    meta = dict(format=PACK_FORMAT, content_hash=content_hash, dataset=spec.name, dim=spec.dim, fps=spec.fps,
                clips=n, rows=rows, captions=len(cap_rows), splits=list(splits), source=str(root),
                build_seconds=round(time.perf_counter() - t0, 3))
    with open(out / META, "w") as f:
        json.dump(meta, f, indent=2)


class Pack:
    """A read-only packed dataset. Clip arguments are ids (str) or clip indices (int)."""

    built = False  # True on the Pack whose open_pack call built it

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        try:
            self.meta = json.loads((self.path / META).read_text())
            with np.load(self.path / INDEX, allow_pickle=False) as z:
                idx = {k: z[k] for k in z.files}
        except (OSError, ValueError, KeyError) as e:
            raise DatasetError(f"not a readable pack ({e}); delete the folder to rebuild it", self.path) from None
        if self.meta.get("format") != PACK_FORMAT:
            raise DatasetError(f"pack format {self.meta.get('format')} != {PACK_FORMAT}; delete it to rebuild",
                               self.path)
        self.spec = L.SPECS[self.meta["dim"]]
        self.skeleton = self.spec.skeleton
        self.dim = self.spec.dim
        self.content_hash: str = self.meta["content_hash"]
        self.source = Path(self.meta.get("source", "")).resolve()  # the dataset folder it was built from
        self.ids: list[str] = idx["ids"].tolist()
        self.offsets: np.ndarray = idx["offsets"]
        self.lengths: np.ndarray = idx["lengths"]
        self.cap_ptr: np.ndarray = idx["cap_ptr"]
        self.cap_rows: np.ndarray = idx["cap_rows"]
        self._text_ptr, self._blob = idx["text_ptr"], idx["text_blob"].tobytes()
        self.mean: np.ndarray = idx["mean"]
        self.std: np.ndarray = idx["std"]
        self._splits = {k[len("split_"):]: v for k, v in idx.items() if k.startswith("split_")}
        self._pos = {cid: i for i, cid in enumerate(self.ids)}
        size = (self.path / MOTIONS).stat().st_size if (self.path / MOTIONS).exists() else -1
        if size != self.meta["rows"] * self.dim * 4:
            raise DatasetError(f"{MOTIONS} has {size} bytes, expected {self.meta['rows'] * self.dim * 4}; delete "
                               "the folder to rebuild it", self.path / MOTIONS)
        self._index_path = self.path / INDEX
        self._fd: int | None = None
        self._fd_pid = -1
        self._array: np.memmap | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        return f"Pack({self.meta['dataset']}, {len(self)} clips, {self.content_hash}, {self.path})"

    def index(self, clip: str | int) -> int:
        if isinstance(clip, (int, np.integer)):
            return int(clip)
        try:
            return self._pos[clip]
        except KeyError:
            raise KeyError(f"clip {clip!r} is not in the pack {self.path}") from None

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self._splits)

    def split_indices(self, name: str) -> np.ndarray:
        if name not in self._splits:
            raise KeyError(f"no split {name!r} (have {', '.join(self._splits)})")
        return self._splits[name]

    def split(self, name: str) -> list[str]:
        """The ids of a split, in the split file's order."""
        return [self.ids[i] for i in self.split_indices(name)]

    @property
    def caption_clip(self) -> np.ndarray:
        """The clip index of every caption (captions x)."""
        return np.repeat(np.arange(len(self.ids), dtype=np.int32), np.diff(self.cap_ptr))

    def caption(self, k: int) -> Caption:
        """Caption number `k` (global caption index)."""
        line = self._blob[self._text_ptr[k]:self._text_ptr[k + 1]].decode()
        return parse_line(line, self._index_path)

    def caption_texts(self) -> list[str]:
        """The text of every caption, in global caption order (duplicates kept: index k is caption k)."""
        return [self.caption(k).text for k in range(int(self.cap_ptr[-1]))]

    def captions(self, clip: str | int) -> list[Caption]:
        i = self.index(clip)
        return [self.caption(k) for k in range(self.cap_ptr[i], self.cap_ptr[i + 1])]

    def _reader(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():  # reopen after a fork: workers get their own fd
            self._fd = os.open(self.path / MOTIONS, os.O_RDONLY)
            self._fd_pid = os.getpid()
        return self._fd

    def motion(self, clip: str | int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of a clip as a new (rows, dim) float32 array, read with pread (no mmap, no RSS growth)."""
        i = self.index(clip)
        n = int(self.lengths[i])
        start, stop = max(0, min(start, n)), n if stop is None else max(0, min(stop, n))
        out = np.empty((max(stop - start, 0), self.dim), np.float32)
        if out.size:
            off = (int(self.offsets[i]) + start) * self.dim * 4
            fd = self._reader()
            if hasattr(os, "preadv"):
                got = os.preadv(fd, [memoryview(out).cast("B")], off)
            else:
                data = os.pread(fd, out.nbytes, off)
                got = len(data)
                out[...] = np.frombuffer(data, np.float32).reshape(out.shape) if got == out.nbytes else 0
            if got != out.nbytes:
                raise DatasetError(f"short read ({got} of {out.nbytes} bytes) for clip {self.ids[i]}",
                                   self.path / MOTIONS)
        return out

    @property
    def array(self) -> np.memmap:
        """Every row of every clip, (rows, dim), memory-mapped read-only (pages touched here do count as RSS)."""
        if self._array is None:
            self._array = np.memmap(self.path / MOTIONS, np.float32, "r", shape=(self.meta["rows"], self.dim))
        return self._array

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.std

    @property
    def norm_hash(self) -> str:
        """Hash of the Mean/Std a model trained on this pack's normalised features depends on (its cache key)."""
        from ..cache import content_hash

        return content_hash({"mean": self.mean.astype(np.float32).tobytes().hex()[:4096],
                             "std": self.std.astype(np.float32).tobytes().hex()[:4096],
                             "mean_sum": float(self.mean.sum()), "std_sum": float(self.std.sum())})

    def denormalize(self, x: np.ndarray) -> np.ndarray:
        return x * self.std + self.mean

    def close(self) -> None:
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._fd, self._array = None, None

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_fd", "_array")} | {"_fd": None, "_array": None}

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _alias_target(alias: Path) -> Path | None:
    try:
        h = json.loads(alias.read_text())["content_hash"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    p = alias.parent.parent / h
    return p if (p / META).is_file() else None


def open_pack(data_dir: str | os.PathLike, workspace: str | os.PathLike = "mate-runs", progress: bool = True) -> Pack:
    """The pack of the dataset at `data_dir`, built into `<workspace>/cache/packs/<content-hash>/` on first use."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError("dataset folder does not exist" if not root.exists() else "not a folder", root)
    root = root.resolve()
    files = L.dataset_files(root)
    alias = packs_dir(workspace) / "aliases" / f"{fingerprint(root, files)}.json"
    target = _alias_target(alias)
    if target is not None:
        note(target)
        return Pack(target)
    built = False
    with lock_for(alias):
        target = _alias_target(alias)
        if target is None:
            h = dataset_hash(root, files, progress)

            def build(tmp: Path) -> None:
                nonlocal built
                build_pack(root, tmp, h, progress)
                built = True

            target = get_or_build(packs_dir(workspace) / h, build)
            write_json(alias, {"content_hash": h, "source": str(root)})
    pack = Pack(target)
    pack.built = built
    return pack


def register_pack(data_dir: str | os.PathLike, workspace: str | os.PathLike, content_hash: str) -> None:
    """Point `open_pack(data_dir, workspace)` at the pack `content_hash` already in the workspace, without reading
    the dataset: for a dataset copied next to its pack (a cluster node) whose bytes are known to be that pack's."""
    root = Path(data_dir).resolve()
    if not (packs_dir(workspace) / content_hash / META).is_file():
        raise DatasetError(f"no pack {content_hash} in {packs_dir(workspace)}", root)
    write_json(packs_dir(workspace) / "aliases" / f"{fingerprint(root)}.json",
               {"content_hash": content_hash, "source": str(root)})
