"""Facts about the HumanML3D / KIT-ML folder layout, and the single-file readers that the pack and the validator share.

Both datasets (and our synthetic corpus) use one layout: `new_joint_vecs/<id>.npy` (T x D features),
`texts/<id>.txt` (captions), `Mean.npy`/`Std.npy`, `train.txt`/`val.txt`/`test.txt` (ids) and optionally
`val_comp.txt`/`test_comp.txt` and `new_joints/`. Which dataset it is follows from the feature width. The length
limits are the public T2M loaders' (a clip is kept when min_len <= rows < 200 and cropped to a multiple of 4, at most
196 rows), so numbers computed on our reads compare with published ones.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DatasetError
from .skeleton import SKELETONS, Skeleton

MOTION_DIR = "new_joint_vecs"
TEXT_DIR = "texts"
JOINTS_DIR = "new_joints"  # optional; never packed
MEAN_FILE = "Mean.npy"
STD_FILE = "Std.npy"
SPLITS = ("train", "val", "test")
COMP_SPLITS = {"val_comp": "val", "test_comp": "test"}  # optional compositional subsets -> their parent split
MOTION_EXT = ".npy"
TEXT_EXT = ".txt"


@dataclass(frozen=True)
class DatasetSpec:
    """The per-dataset constants of the T2M loaders."""

    name: str  # the skeleton's name: "humanml3d" or "kit"
    dim: int
    num_joints: int
    fps: float
    min_len: int  # shortest kept clip, in feature rows
    max_len: int = 200  # clips (and timed sub-clips) of max_len rows or more are dropped
    max_motion_len: int = 196  # crops are at most this long
    unit_len: int = 4  # crops are a multiple of this

    @property
    def skeleton(self) -> Skeleton:
        return SKELETONS[self.name]

    def keeps(self, length):
        """Whether a clip (or sub-clip) of `length` rows passes the length filter (works on arrays too)."""
        return (length >= self.min_len) & (length < self.max_len)


HUMANML3D = DatasetSpec("humanml3d", 263, 22, 20.0, 40)
KIT_ML = DatasetSpec("kit", 251, 21, 12.5, 24)
SPECS = {s.dim: s for s in (HUMANML3D, KIT_ML)}


def configured(spec: DatasetSpec, cfg: Mapping[str, Any] | None) -> DatasetSpec:
    """The dataset's spec with the config's data keys applied (the family's values where a key is unset).

    `data.kind` (auto, humanml3d, kit) names the family the data must be: the family is a fact of the files (their
    feature width, skeleton and frame rate), so a key cannot change it, only refuse data of another family.
    `data.min_len` replaces the shortest kept clip, `data.max_len` the longest crop (`max_motion_len`, in feature rows)
    and `data.unit_len` the crop unit (crops are a multiple of it; the family's longest crop is cut to a multiple of
    it, an explicit data.max_len must be one). The length filter's upper bound (`max_len`: 200, the T2M loaders')
    stays the family's; the motion encoders' token grid (4 rows a token) is their architecture, not these keys.
    """
    from mate.config import ConfigError

    cfg = cfg or {}
    kind = cfg.get("data.kind") or "auto"
    if kind != "auto" and kind != spec.name:
        raise ConfigError(f"data.kind={kind} but the dataset is {spec.name} (feature width {spec.dim}); set "
                          f"data.kind=auto or {spec.name}, or point data.dir at a {kind} dataset")
    over = {field: cfg.get(key) for field, key in (("min_len", "data.min_len"), ("max_motion_len", "data.max_len"),
                                                   ("unit_len", "data.unit_len")) if cfg.get(key) is not None}
    out = replace(spec, **over) if over else spec
    if out.unit_len < 1:
        raise ConfigError(f"data.unit_len must be at least 1 feature row; got {out.unit_len}")
    if cfg.get("data.max_len") is None:  # the family's limit, cut to the crop unit (196 -> 192 for a unit of 16)
        out = replace(out, max_motion_len=out.max_motion_len // out.unit_len * out.unit_len)
    if out.max_motion_len < out.unit_len or out.max_motion_len % out.unit_len:
        raise ConfigError(f"data.max_len={out.max_motion_len} must be a positive multiple of the crop unit "
                          f"{out.unit_len} (data.unit_len): crops are a multiple of it")
    return out


def spec_for_dim(dim: int, path: str | os.PathLike | None = None) -> DatasetSpec:
    if dim not in SPECS:
        raise DatasetError(f"feature width {dim} is neither HumanML3D's 263 nor KIT-ML's 251", path)
    return SPECS[dim]


def split_file(root: str | os.PathLike, name: str) -> Path:
    return Path(root) / f"{name}.txt"


def motion_file(root: str | os.PathLike, cid: str) -> Path:
    return Path(root) / MOTION_DIR / f"{cid}{MOTION_EXT}"


def text_file(root: str | os.PathLike, cid: str) -> Path:
    return Path(root) / TEXT_DIR / f"{cid}{TEXT_EXT}"


def read_split(path: str | os.PathLike) -> list[str]:
    """The ids of a split file, in file order (blank lines skipped, whitespace stripped)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise DatasetError("split file does not exist", path) from None
    except UnicodeDecodeError:
        raise DatasetError("split file is not UTF-8 text", path) from None
    except OSError as e:
        raise DatasetError(f"cannot read split file: {e.strerror}", path) from None
    ids = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for i, cid in enumerate(ids):
        if any(c.isspace() or c in "/\\" for c in cid):
            raise DatasetError(f"id {cid!r} contains whitespace or a path separator", path, i + 1)
    return ids


def load_npy(path: str | os.PathLike, mmap: bool = False) -> np.ndarray:
    """np.load without pickles, turning every failure (missing, truncated, not .npy) into DatasetError."""
    if not os.path.isfile(path):
        raise DatasetError("file does not exist", path)
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError/UnpicklingError for corrupt files
        raise DatasetError(f"unreadable .npy ({type(e).__name__}: {str(e)[:120]})", path) from None
    if not isinstance(arr, np.ndarray):
        raise DatasetError("not a single .npy array", path)
    return arr


def motion_issues(arr: np.ndarray, dim: int | None) -> list[tuple[str, str]]:
    """(code, message) for what is wrong with a clip's feature array: dtype, ndim, width, non-finite values."""
    if not np.issubdtype(arr.dtype, np.floating):
        return [("dtype", f"dtype {arr.dtype} is not floating point")]
    if arr.ndim != 2:
        return [("ndim", f"expected a 2-D (rows, features) array, got shape {arr.shape}")]
    out = []
    if dim is not None and arr.shape[1] != dim:
        out.append(("width", f"feature width {arr.shape[1]} differs from the dataset's {dim} (Mean/Std)"))
    elif arr.shape[1] not in SPECS:
        out.append(("width", f"feature width {arr.shape[1]} is neither HumanML3D's 263 nor KIT-ML's 251"))
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        out.append(("nonfinite", f"{int(bad.sum())} NaN/Inf values in {rows.size} rows (first row {int(rows[0])})"))
    return out


def load_motion(path: str | os.PathLike, dim: int | None = None) -> np.ndarray:
    """A clip's (rows, dim) float32 features, or DatasetError naming the file and what is wrong."""
    arr = load_npy(path)
    issues = motion_issues(arr, dim)
    if issues:
        raise DatasetError("; ".join(m for _, m in issues), path)
    return np.ascontiguousarray(arr, dtype=np.float32)


def stats_issues(mean: np.ndarray, std: np.ndarray) -> list[tuple[str, str, str]]:
    """(file, code, message) for Mean/Std arrays that cannot normalise features."""
    out = []
    for name, a in ((MEAN_FILE, mean), (STD_FILE, std)):
        if not np.issubdtype(a.dtype, np.floating) or a.ndim != 1:
            out.append((name, "stats_shape", f"expected a 1-D float vector, got {a.dtype} of shape {a.shape}"))
        elif a.shape[0] not in SPECS:
            out.append((name, "stats_shape", f"width {a.shape[0]} is neither HumanML3D's 263 nor KIT-ML's 251"))
        elif not np.isfinite(a).all():
            out.append((name, "stats_nonfinite", f"{int((~np.isfinite(a)).sum())} NaN/Inf entries"))
    if not out and mean.shape != std.shape:
        out.append((STD_FILE, "stats_shape", f"shape {std.shape} differs from Mean.npy's {mean.shape}"))
    if not out and (std <= 0).any():
        out.append((STD_FILE, "std_nonpositive", f"{int((std <= 0).sum())} entries are zero or negative (first at "
                    f"index {int(np.flatnonzero(std <= 0)[0])}): normalising would divide by them"))
    return out


def load_stats(root: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and Std (float32), checked; DatasetError names the bad file."""
    root = Path(root)
    mean, std = load_npy(root / MEAN_FILE), load_npy(root / STD_FILE)
    issues = stats_issues(mean, std)
    if issues:
        raise DatasetError(issues[0][2], root / issues[0][0])
    return mean.astype(np.float32), std.astype(np.float32)


def detect(root: str | os.PathLike) -> DatasetSpec:
    """HumanML3D or KIT-ML, from the width of Mean.npy (the header only)."""
    mean = load_npy(Path(root) / MEAN_FILE, mmap=True)
    return spec_for_dim(int(mean.shape[-1]) if mean.ndim else -1, Path(root) / MEAN_FILE)


def dataset_files(root: str | os.PathLike) -> list[str]:
    """Every file a pack depends on, as sorted relative posix paths: Mean/Std, the split files present, all motions
    and all caption files (strings, not Paths: for 60k files Path objects cost more than the stat calls)."""
    root = os.fspath(root)
    names = [MEAN_FILE, STD_FILE] + [f"{s}.txt" for s in (*SPLITS, *COMP_SPLITS)]
    out = [n for n in names if os.path.isfile(os.path.join(root, n))]
    for sub, ext in ((MOTION_DIR, MOTION_EXT), (TEXT_DIR, TEXT_EXT)):
        d = os.path.join(root, sub)
        if os.path.isdir(d):
            with os.scandir(d) as it:
                out.extend(sorted(f"{sub}/{e.name}" for e in it if e.name.endswith(ext) and not e.name.startswith(".")))
    return out
