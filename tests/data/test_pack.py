"""The packed cache: contents, reuse without rewriting, content hashing, concurrent builders, clear errors.

`make_dataset` (also used by test_dataset and test_check) writes a small HumanML3D-layout dataset from the real
sample clip 012314 (crops plus a little noise), the real Mean/Std and the real caption file's lines.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mate.data.captions import read_captions
from mate.data.errors import DatasetError
from mate.data.layout import HUMANML3D, KIT_ML, dataset_files
from mate.data.pack import MOTIONS, open_pack, packs_dir

TIMED = "a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.5#3.0\n"


def make_dataset(root: Path, sample: Path, caption_file: Path | None = None, *, n: int = 8, seed: int = 0,
                 lengths: list[int] | None = None, extra_lines: str = TIMED) -> Path:
    """n clips `000000`…: random crops (60..170 rows, or `lengths`) of the real clip plus noise; captions = the real
    file's four lines (or a whole-clip line) + `extra_lines`; train/val/test = n-4/2/2 ids."""
    rng = np.random.default_rng(seed)
    src = np.load(sample / "new_joint_vecs" / "012314.npy")
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    base = caption_file.read_text() if caption_file else "a man kicks#a/DET man/NOUN kick/VERB#0.0#0.0\n"
    ids = [f"{i:06d}" for i in range(n)]
    for i, cid in enumerate(ids):
        length = lengths[i] if lengths else int(rng.integers(60, 171))
        if length <= len(src):
            a = int(rng.integers(0, len(src) - length + 1))
            clip = src[a: a + length]
        else:  # longer than the real clip: tile it
            clip = np.concatenate([src] * -(-length // len(src)))[:length]
        np.save(root / "new_joint_vecs" / f"{cid}.npy", (clip + rng.normal(0, 0.01, clip.shape)).astype(np.float32))
        (root / "texts" / f"{cid}.txt").write_text(base + extra_lines)
    shutil.copy(sample / "Mean.npy", root / "Mean.npy")
    shutil.copy(sample / "Std.npy", root / "Std.npy")
    (root / "train.txt").write_text("\n".join(ids[:-4]) + "\n")
    (root / "val.txt").write_text("\n".join(ids[-4:-2]) + "\n")
    (root / "test.txt").write_text("\n".join(ids[-2:]) + "\n")
    return root


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))}


@pytest.fixture
def ds(tmp_path, hml_sample, hml_caption_file) -> Path:
    return make_dataset(tmp_path / "ds", hml_sample, hml_caption_file)


def test_pack_contents_match_the_files(ds, tmp_path, hml_caption_file):
    pack = open_pack(ds, tmp_path / "ws", progress=False)
    assert pack.built and pack.spec == HUMANML3D and pack.skeleton.name == "humanml3d" and pack.dim == 263
    assert pack.ids == [f"{i:06d}" for i in range(8)]
    assert pack.split("train") == pack.ids[:4] and pack.split("test") == ["000006", "000007"]
    assert set(pack.splits) == {"train", "val", "test"}
    rows = []
    for i, cid in enumerate(pack.ids):
        ref = np.load(ds / "new_joint_vecs" / f"{cid}.npy")
        got = pack.motion(cid)
        assert got.dtype == np.float32 and got.flags.writeable and not isinstance(got, np.memmap)
        np.testing.assert_array_equal(got, ref)
        np.testing.assert_array_equal(pack.motion(i, 10, 30), ref[10:30])
        assert pack.lengths[i] == len(ref)
        assert pack.captions(cid) == read_captions(ds / "texts" / f"{cid}.txt")
        rows.append(ref)
    np.testing.assert_array_equal(np.asarray(pack.array), np.concatenate(rows))
    assert not pack.array.flags.writeable and pack.offsets.dtype == np.int64
    np.testing.assert_array_equal(pack.mean, np.load(ds / "Mean.npy"))
    np.testing.assert_array_equal(pack.std, np.load(ds / "Std.npy"))
    assert [c.text for c in pack.captions("000003")[:4]] == [c.text for c in read_captions(hml_caption_file)]
    assert pack.caption_texts() == [c.text for cid in pack.ids for c in read_captions(ds / "texts" / f"{cid}.txt")]
    # the timed caption 0.5-3.0 s covers rows [10, 60) at 20 fps; whole-clip captions cover the clip
    k = pack.cap_ptr[3]
    assert pack.cap_rows[k + 4].tolist() == [10, 60] and pack.cap_rows[k].tolist() == [0, pack.lengths[3]]
    meta = json.loads((pack.path / "meta.json").read_text())
    assert meta["clips"] == 8 and meta["rows"] == int(pack.lengths.sum()) and meta["content_hash"] == pack.content_hash
    assert pack.path == packs_dir(tmp_path / "ws") / pack.content_hash


def test_second_open_reuses_without_rewriting_or_touching_the_dataset(ds, tmp_path):
    before = _snapshot(ds)
    first = open_pack(ds, tmp_path / "ws", progress=False)
    st = (first.path / MOTIONS).stat()
    time.sleep(0.01)
    second = open_pack(ds, tmp_path / "ws", progress=False)
    assert not second.built and second.path == first.path and second.content_hash == first.content_hash
    st2 = (second.path / MOTIONS).stat()
    assert (st2.st_ino, st2.st_mtime_ns) == (st.st_ino, st.st_mtime_ns)
    assert _snapshot(ds) == before  # the dataset folder is read-only to us
    leftovers = [p.name for p in packs_dir(tmp_path / "ws").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_content_hash_follows_bytes_not_stat(ds, tmp_path):
    ws = tmp_path / "ws"
    first = open_pack(ds, ws, progress=False)
    # same bytes, new mtime: the fingerprint changes, so it rehashes, finds the same content and reuses the pack
    p = ds / "texts" / "000002.txt"
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10_000_000))
    same = open_pack(ds, ws, progress=False)
    assert same.content_hash == first.content_hash and not same.built
    # a copy elsewhere (other path, other mtimes) has the same content: same pack, no rebuild
    copy = shutil.copytree(ds, tmp_path / "copy", copy_function=shutil.copyfile)
    assert open_pack(copy, ws, progress=False).path == first.path
    # one changed byte in one motion: new hash, new pack; the old one is untouched
    m = ds / "new_joint_vecs" / "000005.npy"
    data = bytearray(m.read_bytes())
    data[-1] ^= 1
    m.write_bytes(bytes(data))
    changed = open_pack(ds, ws, progress=False)
    assert changed.built and changed.content_hash != first.content_hash and first.path.is_dir()
    assert not np.array_equal(changed.motion("000005"), first.motion("000005"))


_RACER = """
import json, sys, time
from pathlib import Path
from mate.data.pack import open_pack
Path(sys.argv[3]).touch()
while not Path(sys.argv[4]).exists():
    time.sleep(0.002)
p = open_pack(sys.argv[1], sys.argv[2], progress=False)
print(json.dumps({"built": p.built, "hash": p.content_hash, "rows": int(p.lengths.sum())}))
"""


def test_two_processes_racing_build_one_pack(tmp_path, hml_sample, hml_caption_file):
    ds = make_dataset(tmp_path / "ds", hml_sample, hml_caption_file, n=40)
    ws, go = tmp_path / "ws", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(ds), str(ws), str(tmp_path / f"ready{i}"), str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready{i}").exists() for i in range(2)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outs.append(json.loads(out))
    assert sorted(o["built"] for o in outs) == [False, True]  # exactly one builder
    assert outs[0]["hash"] == outs[1]["hash"] and outs[0]["rows"] == outs[1]["rows"]
    entries = sorted(p.name for p in packs_dir(ws).iterdir() if not p.name.endswith(".lock"))
    assert entries == sorted(["aliases", outs[0]["hash"]])


def test_kit_ml_is_detected_from_the_width(tmp_path):
    root = tmp_path / "kit"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    rng = np.random.default_rng(1)
    for cid, n in (("00001", 30), ("00002", 50)):
        np.save(root / "new_joint_vecs" / f"{cid}.npy", rng.normal(size=(n, 251)).astype(np.float32))
        (root / "texts" / f"{cid}.txt").write_text("a man waves#a/DET man/NOUN wave/VERB#0.0#2.0\n")
    np.save(root / "Mean.npy", np.zeros(251, np.float32))
    np.save(root / "Std.npy", np.ones(251, np.float32))
    for s, ids in (("train", "00001\n"), ("val", "00002\n"), ("test", "00002\n")):
        (root / f"{s}.txt").write_text(ids)
    pack = open_pack(root, tmp_path / "ws", progress=False)
    assert pack.spec == KIT_ML and pack.skeleton.num_joints == 21 and pack.spec.min_len == 24
    assert pack.cap_rows.tolist() == [[0, 25], [0, 25]]  # 2.0 s at 12.5 fps = 25 rows


@pytest.mark.parametrize("corrupt,where,fragment", [
    (lambda d: (d / "val.txt").unlink(), "val.txt", "does not exist"),
    (lambda d: (d / "new_joint_vecs" / "000003.npy").write_bytes(b"garbage"),
     "new_joint_vecs/000003.npy", "unreadable"),
    (lambda d: np.save(d / "new_joint_vecs" / "000001.npy", np.zeros((50, 200), np.float32)),
     "new_joint_vecs/000001.npy", "width 200"),
    (lambda d: np.save(d / "new_joint_vecs" / "000001.npy", np.full((50, 263), np.nan, np.float32)),
     "new_joint_vecs/000001.npy", "NaN"),
    (lambda d: (d / "texts" / "000002.txt").write_text("ok#ok/ADJ#0.0#0.0\nbroken line\n"),
     "texts/000002.txt:2", "4 fields"),
    (lambda d: (d / "texts" / "000004.txt").unlink(), "texts/000004.txt", "no caption file"),
    (lambda d: np.save(d / "Std.npy", np.zeros(263, np.float32)), "Std.npy", "zero or negative"),
    (lambda d: shutil.rmtree(d / "texts"), "texts", "missing folder"),
])
def test_readers_raise_dataset_errors_naming_the_file(ds, tmp_path, corrupt, where, fragment):
    corrupt(ds)
    with pytest.raises(DatasetError) as e:
        open_pack(ds, tmp_path / "ws", progress=False)
    assert f"{ds}/{where}" in str(e.value) and fragment in str(e.value)
    packs = packs_dir(tmp_path / "ws")
    assert not [p for p in packs.iterdir() if p.is_dir() and p.name != "aliases"]  # nothing half-built left


def test_missing_dataset_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        open_pack(tmp_path / "nope", tmp_path / "ws")
    assert dataset_files(tmp_path / "nope") == []
