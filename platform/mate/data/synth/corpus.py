"""`synthesize`: write the synthetic kinematic corpus in the HumanML3D layout, with its ground truth.

Files (ids are zero-padded clip indices, `000123`):
- `new_joint_vecs/<id>.npy` (T, 263) float32, 40 <= T <= 196, from T+1 joint frames at 20 fps;
  `new_joints/<id>.npy` (T, 22, 3) float32 recovered from those features; `texts/<id>.txt` 3 caption lines
  `caption#word/POS ...#0.0#0.0`; `Mean.npy`/`Std.npy` from the train split (std averaged within each feature group,
  as HumanML3D does); `train.txt`/`val.txt`/`test.txt` and `val_comp.txt`/`test_comp.txt`.
- `annotations.jsonl`, one clip a line, in id order:
  {id, length (rows), split, compositional (bool),
   segments: [{action, attributes {turn|direction|speed|limb: value} (speed absent = normal), span [start, end)
               rows, held_out: [[action, attribute, value]] (only when present)}],
   stance: {left, right: [[start, end), ...]} rows where that foot's ankle and toe are planted (do not move),
   captions: [{text, template, order (segment indices in textual order), reordered (bool),
               subtexts: [{text, segment, span [start, end) rows, chars [start, end) in text}] in textual order,
               words: [{surface, char (offset in text), attribute, value, segment, hard_case?}]}]}
- `prompts/minimal_pairs.jsonl` (see pairs.py) and `meta.json` (generator version, seed, held-out combinations,
  vocabulary, conventions).
Every file is a function of (seed, num) only: byte-identical across runs and worker counts.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from ...cache import atomic_write, write_json
from ..skeleton import T2M
from . import rules, schema
from .clip import make_clip
from .pairs import minimal_pairs
from .vocab import HARD_CASE, hard_cases, vocabulary

GENERATOR_VERSION = "1.0.0"
COMP_SHARE = 0.375  # share of val and of test clips that carry a held-out combination
MIN_EVAL_CLIPS = 32  # val and test keep at least this many clips when num allows (num >= 128)
SUBDIRS = ("new_joint_vecs", "new_joints", "texts")


def split_sizes(num: int) -> tuple[int, int, int]:
    """(train, val, test): 80/10/10, with at least 32 clips in val and in test when num allows it."""
    n_eval = max(round(0.1 * num), min(MIN_EVAL_CLIPS, num // 4))
    return num - 2 * n_eval, n_eval, n_eval


def assign(num: int, seed: int) -> tuple[list[str], list[str]]:
    """Split and role ("train", "plain", "comp") of every clip index."""
    _, n_val, n_test = split_sizes(num)
    perm = np.random.default_rng([seed, 2_147_483_647]).permutation(num)
    split, role = ["train"] * num, ["train"] * num
    for name, members in (("val", perm[:n_val]), ("test", perm[n_val:n_val + n_test])):
        n_comp = math.ceil(COMP_SHARE * len(members))
        for k, i in enumerate(members):
            split[i], role[i] = name, "comp" if k < n_comp else "plain"
    return split, role


def clip_id(index: int) -> str:
    return f"{index:06d}"


def _work(task: tuple) -> tuple[int, dict, tuple | None]:
    seed, index, role, split, out = task
    cid = clip_id(index)
    clip = make_clip(seed, index, role, cid, split)
    out = Path(out)
    np.save(out / "new_joint_vecs" / f"{cid}.npy", clip.features)
    np.save(out / "new_joints" / f"{cid}.npy", clip.joints)
    (out / "texts" / f"{cid}.txt").write_text("".join(line + "\n" for line in clip.lines), encoding="utf-8")
    stats = None
    if split == "train":
        f = clip.features.astype(np.float64)
        mean = f.mean(0)
        stats = (len(f), mean, ((f - mean) ** 2).sum(0))
    return index, clip.annotation, stats


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _merge(a: tuple, b: tuple) -> tuple:
    """Chan et al.'s pairwise update of (count, mean, sum of squared deviations)."""
    n = a[0] + b[0]
    delta = b[1] - a[1]
    return n, a[1] + delta * b[0] / n, a[2] + b[2] + delta**2 * a[0] * b[0] / n


def _mean_std(stats: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    acc = stats[0]
    for s in stats[1:]:
        acc = _merge(acc, s)
    mean, std = acc[1], np.sqrt(acc[2] / acc[0])
    for sl in T2M.feature_slices().values():  # HumanML3D: one std per feature group
        std[sl] = std[sl].mean()
    return mean.astype(np.float32), np.maximum(std, 1e-6).astype(np.float32)  # floor: degenerate tiny corpora only


def _clean(out: Path, ids: set[str]) -> None:
    """Remove clip files a previous, larger corpus left in our own folders."""
    for sub in SUBDIRS:
        for p in (out / sub).iterdir():
            if p.stem not in ids:
                p.unlink()


def _write_lines(path: Path, lines: list[str]) -> None:
    with atomic_write(path, "w") as f:
        f.write("".join(x + "\n" for x in lines))


def _meta(seed: int, num: int, counts: dict, pair_counts: dict) -> dict:
    return {
        "generator": "mate.data.synth", "version": GENERATOR_VERSION, "seed": seed, "num": num, "fps": 20,
        "skeleton": T2M.name, "splits": counts, "pairs": pair_counts,
        "attributes": list(schema.ATTRIBUTES), "values": {k: list(v) for k, v in schema.VALUES.items()},
        "allowed": {a: {k: list(v) for k, v in d.items()} for a, d in schema.ALLOWED.items()},
        "held_out": [{"action": a, "attribute": k, "value": v} for a, k, v in schema.HELD_OUT],
        "vocabulary": vocabulary(), "hard_cases": {HARD_CASE: hard_cases()},
        "speed_thresholds": {a: list(t) for a, t in rules.SPEED_THRESHOLDS.items()},
        "conventions": {
            "axes": "metres; y up, floor at y=0; frame 0's pelvis at the xz origin facing +z; the body's left is +x",
            "turn": "seen from above: counterclockwise = positive rotation about +y = turning to the body's left",
            "root_angular_velocity": "features[:, 0] is negative while the body turns counterclockwise "
                                     "(HumanML3D: half the yaw step of the inverse facing rotation)",
            "direction": "direction of travel in the body's facing frame (forward +z, left +x)",
            "speed": "absent from a segment's attributes = normal speed",
            "spans": "feature rows [start, end); T+1 joint frames give T rows",
            "stance": "annotations' stance: rows [start, end) where that foot's ankle and toe are planted",
        },
    }


def synthesize(out_dir, num: int, seed: int, progress: bool = True, workers: int | None = None) -> dict:
    """Write a corpus of `num` clips for `seed` into `out_dir`; returns a summary (split counts, pair counts, time).

    workers: processes (default: up to 2 for 200 clips or more, else in-process; the output does not depend on it).
    """
    from tqdm import tqdm

    if num < 1:
        raise ValueError(f"num must be at least 1, got {num}")
    start = time.perf_counter()
    out = Path(out_dir)
    for sub in (*SUBDIRS, "prompts"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    _clean(out, {clip_id(i) for i in range(num)})
    split, role = assign(num, seed)
    tasks = [(seed, i, role[i], split[i], str(out)) for i in range(num)]
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if num >= 200 else 1
    annotations: list[dict] = [{}] * num
    stats: list[tuple] = []
    bar = tqdm(total=num, desc="synth", unit="clip", disable=not progress)
    if workers <= 1:
        results = map(_work, tasks)
        pool = None
    else:
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker)
        results = pool.map(_work, tasks, chunksize=8)
    try:
        for index, ann, st in results:
            annotations[index] = ann
            if st is not None:
                stats.append(st)
            bar.update()
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()

    ids = {name: [clip_id(i) for i in range(num) if split[i] == name] for name in ("train", "val", "test")}
    for name in ("val", "test"):
        ids[f"{name}_comp"] = [clip_id(i) for i in range(num) if split[i] == name and role[i] == "comp"]
    for name, members in ids.items():
        _write_lines(out / f"{name}.txt", members)
    mean, std = _mean_std(stats if stats else [_work(tasks[0])[2] or (1, np.zeros(263), np.ones(263))])
    with atomic_write(out / "Mean.npy") as f:
        np.save(f, mean)
    with atomic_write(out / "Std.npy") as f:
        np.save(f, std)
    _write_lines(out / "annotations.jsonl", [json.dumps(a) for a in annotations])
    pairs = minimal_pairs(seed, annotations)
    _write_lines(out / "prompts" / "minimal_pairs.jsonl", [json.dumps(p) for p in pairs])
    counts = {k: len(v) for k, v in ids.items()}
    pair_counts = {"antonym": sum(p["kind"] == "antonym" for p in pairs),
                   "antonym_compositional": sum(p["kind"] == "antonym" and p["compositional"] for p in pairs),
                   "synonym": sum(p["kind"] == "synonym" for p in pairs)}
    write_json(out / "meta.json", _meta(seed, num, counts, pair_counts))
    return {"out": str(out), "num": num, "seed": seed, "splits": counts, "pairs": pair_counts, "workers": workers,
            "seconds": round(time.perf_counter() - start, 2)}
