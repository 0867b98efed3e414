"""Quality of the frozen retrieval model and of the optimal partition on the bench corpus (BENCHMARKS.md).

    python bench/evaluator_bench.py [--workspace W] [--num 2000] [key=value ...]

Trains (or loads) the scoring evaluator (evaluator.seed) and the partition model (align.partition_seed) with the
`bench` profile on the 2,000-clip synthetic corpus, then reports on val (for choosing) and test (for reporting):
- R-Precision top-1/2/3 of real motions against their captions, next to the corpus's R@1 ceiling (an ideal
  retriever that cannot tell same-meaning captions apart);
- FID between two random halves of the real set, and FID of the "mean motion" generator (every motion the dataset
  mean), whose ratio says whether FID separates anything at this set size;
- mean frame IoU of the partition model's partitions with the annotated spans, given the ground-truth sub-texts, on
  captions with at least two sub-texts, against the equal-length split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from mate.config import derive_seed, resolve
from mate.data.dataset import MotionDataset
from mate.data.pack import open_pack
from mate.data.source import resolve_dataset
from mate.evaluate.metrics import fid, r_precision, r_precision_ceiling
from mate.evaluate.partition import equal_split, mean_frame_iou, partition_dataset, tokens_to_frames
from mate.evaluate.retrieval import embed_texts, train_or_load
from mate.text.cached import frozen_features
from mate.text.encoder import TextEncoder


def _meaning(caption: dict) -> tuple:
    """What a caption says: its motion words' (segment, attribute, value), in segment order."""
    return tuple(sorted((w["segment"], w["attribute"], w["value"]) for w in caption["words"]))


def retrieval_figures(ev, pack, notes: dict, split: str, seed: int) -> dict:
    ds = MotionDataset(pack, split, random_crop=False)
    order = np.random.default_rng(seed).permutation(len(ds))
    items = [ds[int(i)] for i in order]
    text = ev.embed_texts([it["text"] for it in items])
    motion = ev.embed_motions([it["motion"] for it in items])
    top = r_precision(text, motion, batch_size=32, top_k=3)
    meanings = {c["text"]: _meaning(c) for a in notes.values() for c in a["captions"]}
    groups = np.unique([str(meanings.get(it["text"], it["text"])) for it in items], return_inverse=True)[1]
    ceiling = r_precision_ceiling(groups, batch_size=32, seed=seed, repeats=20)
    half = len(items) // 2
    perm = np.random.default_rng(seed + 1).permutation(len(items))
    fid_halves = fid(motion[perm[:half]], motion[perm[half : 2 * half]])
    mean_motion = ev.embed_motions([np.zeros_like(it["motion"]) for it in items])  # normalised dataset mean
    fid_mean = fid(motion, mean_motion)
    return {"items": len(items), "r1": float(top[0]), "r2": float(top[1]), "r3": float(top[2]),
            "ceiling_r1": ceiling["top1"], "ceiling_r3": ceiling["top3"], "fid_halves": fid_halves,
            "fid_mean_motion": fid_mean, "fid_ratio": fid_halves / fid_mean}


def partition_figures(ev, encoder, pack, notes: dict, split: str, workspace: Path, min_len: int) -> dict:
    cases = []
    for cid in pack.split(split):
        a = notes[cid]
        spans = [tuple(s["span"]) for s in a["segments"]]
        for cap in a["captions"]:
            subs = sorted(cap["subtexts"], key=lambda s: s["segment"])  # temporal order
            if len(subs) >= 2 and [s["segment"] for s in subs] == list(range(len(spans))):
                cases.append((cid, [s["text"] for s in subs], [spans[s["segment"]] for s in subs]))
    texts = sorted({t for _, subs, _ in cases for t in subs})
    feats = frozen_features(encoder, texts, workspace, progress=False)
    sub_emb = dict(zip(texts, embed_texts(ev.model, feats, texts)))
    with torch.no_grad():
        tokens = {cid: ev.model.motion.tokens(torch.from_numpy(pack.normalize(pack.motion(cid))[None]))[0].numpy()
                  for cid in {c for c, _, _ in cases}}
    start = time.perf_counter()
    parts = partition_dataset([tokens[c] for c, _, _ in cases], [np.stack([sub_emb[t] for t in s]) for _, s, _ in cases],
                              min_len=min_len, pool=ev.model.window_head)
    seconds = time.perf_counter() - start
    lengths = [int(pack.lengths[pack.index(c)]) for c, _, _ in cases]
    preds = [tokens_to_frames(p, n) for p, n in zip(parts, lengths)]
    truth = [t for _, _, t in cases]
    equal = [equal_split(n, len(t)) for n, t in zip(lengths, truth)]
    return {"captions": len(cases), "iou": mean_frame_iou(preds, truth), "iou_equal": mean_frame_iou(equal, truth),
            "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", default="mate-runs")
    ap.add_argument("--min-len", type=int, default=2, help="shortest segment, in motion tokens (4 rows each)")
    ap.add_argument("--out", type=Path, help="write the figures as JSON here")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = resolve(["profile=bench", *args.overrides])
    ws = Path(args.workspace)
    data = resolve_dataset(cfg, ws)
    pack = open_pack(data, ws)
    notes = {json.loads(line)["id"]: json.loads(line) for line in (Path(data) / "annotations.jsonl").open()}
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    report: dict = {"config": cfg.section("evaluator"), "dataset": pack.content_hash}
    for role, seed in (("scoring", cfg.seed_for("evaluator")), ("partition", cfg["align.partition_seed"]
                                                                    or derive_seed(cfg["seed"], "partition"))):
        t0 = time.perf_counter()
        ev = train_or_load(pack, encoder, cfg, ws, seed=seed)
        report[role] = {"sha": ev.sha, "seed": seed, "epochs": ev.meta["epochs_done"],
                        "train_seconds": ev.meta["train_seconds"], "wall_seconds": time.perf_counter() - t0}
        for split in ("val", "test"):
            report[role][split] = retrieval_figures(ev, pack, notes, split, seed=0)
            if role == "partition":
                report[role][split]["partition"] = partition_figures(ev, encoder, pack, notes, split, ws, args.min_len)
        print(json.dumps({role: report[role]}, indent=1), file=sys.stderr)
    print("| model | split | R@1 | R@2 | R@3 | R@1 ceiling | R@3 ceiling | FID halves / FID mean-motion | partition IoU | equal split IoU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for role in ("scoring", "partition"):
        for split in ("val", "test"):
            r, p = report[role][split], report[role][split].get("partition")
            name = f"{role} ({report[role]['sha'][:8]}, {report[role]['epochs']} ep, {report[role]['train_seconds']:.0f} s)"
            part = f"{p['iou']:.3f} ({p['captions']} captions) | {p['iou_equal']:.3f}" if p else "- | -"
            print(f"| {name} | {split} | {r['r1']:.3f} | {r['r2']:.3f} | {r['r3']:.3f} | {r['ceiling_r1']:.3f} | "
                  f"{r['ceiling_r3']:.3f} | {r['fid_halves']:.4f} / {r['fid_mean_motion']:.3f} = {r['fid_ratio']:.3f} | "
                  f"{part} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
