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

from mate.config import resolve
from mate.data.dataset import MotionDataset
from mate.data.pack import open_pack
from mate.data.source import resolve_dataset
from mate.evaluate.metrics import fid, r_precision
from mate.evaluate.retrieval import embed_texts, train_or_load
from mate.evaluate.retrieval.train import partition_seed
from mate.evaluate.truth import ceiling, load_annotations, partition_cases, partition_iou
from mate.text.cached import frozen_features
from mate.text.encoder import TextEncoder


def retrieval_figures(ev, pack, notes: dict, split: str, seed: int, subset: str = "all") -> dict:
    ds = MotionDataset(pack, split, random_crop=False)
    comp = set(pack.split(f"{split}_comp"))
    keep = {"all": lambda cid: True, "comp": lambda cid: cid in comp, "non-comp": lambda cid: cid not in comp}[subset]
    order = np.random.default_rng(seed).permutation(len(ds))
    items = [it for it in (ds[int(i)] for i in order) if keep(it["id"])]
    text = ev.embed_texts([it["text"] for it in items])
    motion = ev.embed_motions([it["motion"] for it in items])
    top = r_precision(text, motion, batch_size=32, top_k=3)
    cap = ceiling(notes, [it["text"] for it in items], seed=seed)
    half = len(items) // 2
    perm = np.random.default_rng(seed + 1).permutation(len(items))
    fid_halves = fid(motion[perm[:half]], motion[perm[half : 2 * half]])
    mean_motion = ev.embed_motions([np.zeros_like(it["motion"]) for it in items])  # normalised dataset mean
    fid_mean = fid(motion, mean_motion)
    return {"items": len(items), "r1": float(top[0]), "r2": float(top[1]), "r3": float(top[2]),
            "ceiling_r1": cap["top1"], "ceiling_r3": cap["top3"], "fid_halves": fid_halves,
            "fid_mean_motion": fid_mean, "fid_ratio": fid_halves / fid_mean}


def partition_figures(ev, encoder, pack, notes: dict, split: str, workspace: Path, min_len: int) -> dict:
    cases = partition_cases(notes, pack.split(split))

    def embed(texts):
        return embed_texts(ev.model, frozen_features(encoder, texts, workspace, progress=False), texts)

    start = time.perf_counter()
    out = partition_iou(ev.model, embed, pack, cases, min_len=min_len)
    return {"captions": len(cases), "iou": out["eval/partition_iou"], "iou_equal": out["eval/partition_iou_equal"],
            "seconds": time.perf_counter() - start}


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
    notes = load_annotations(data)
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    report: dict = {"config": cfg.section("evaluator"), "dataset": pack.content_hash}
    for role, seed in (("scoring", cfg.seed_for("evaluator")), ("partition", partition_seed(cfg))):
        t0 = time.perf_counter()
        ev = train_or_load(pack, encoder, cfg, ws, seed=seed)
        report[role] = {"sha": ev.sha, "seed": seed, "epochs": ev.meta["epochs_done"],
                        "train_seconds": ev.meta["train_seconds"], "wall_seconds": time.perf_counter() - t0}
        trained = set(cfg["evaluator.splits"].split(","))
        for split in ("val", "test"):
            for subset in ("all", "non-comp", "comp"):
                key = f"{split} ({subset}{', trained on' if split in trained else ''})"
                report[role][key] = retrieval_figures(ev, pack, notes, split, seed=0, subset=subset)
                if role == "partition" and subset == "all":
                    report[role][key]["partition"] = partition_figures(ev, encoder, pack, notes, split, ws,
                                                                       args.min_len)
        print(json.dumps({role: report[role]}, indent=1), file=sys.stderr)
    print("| model | split | R@1 | R@2 | R@3 | R@1 ceiling | R@3 ceiling | FID halves / FID mean-motion "
          "| partition IoU | equal split IoU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for role in ("scoring", "partition"):
        for split in [k for k in report[role] if k.startswith(("val", "test"))]:
            r, p = report[role][split], report[role][split].get("partition")
            name = (f"{role} ({report[role]['sha'][:8]}, {report[role]['epochs']} ep, "
                    f"{report[role]['train_seconds']:.0f} s)")
            part = f"{p['iou']:.3f} ({p['captions']} captions) | {p['iou_equal']:.3f}" if p else "- | -"
            print(f"| {name} | {split} | {r['r1']:.3f} | {r['r2']:.3f} | {r['r3']:.3f} | {r['ceiling_r1']:.3f} | "
                  f"{r['ceiling_r3']:.3f} | {r['fid_halves']:.4f} / {r['fid_mean_motion']:.3f} "
                  f"= {r['fid_ratio']:.3f} | {part} |")
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
