"""`mate align`: one MATE alignment run on a dataset; writes the aligned rows, metrics.json, run.json and plots."""

from __future__ import annotations

import argparse
from pathlib import Path


def _cmd_align(args: argparse.Namespace) -> int:
    from mate.config import resolve
    from mate.data.source import resolve_dataset
    from mate.runinfo import write_outputs

    from .run import run_align

    over = list(args.overrides) + ([f"data.dir={args.data}"] if args.data else [])
    cfg = resolve(over, profile="bench")
    data = resolve_dataset(cfg, args.workspace, progress=not args.quiet)
    out = Path(args.out) if args.out else Path(args.workspace) / "runs" / f"align-s{cfg['seed']}"
    metrics = run_align(cfg, data, args.workspace, out, progress=not args.quiet,
                        log=(lambda s: None) if args.quiet else print)
    write_outputs(out, metrics, cfg, data=str(data))
    shown = ("align/val_r1", "val/align/word_pair_acc", "val/align/word_pair_acc_comp", "val/align/attn_in_span",
             "align/row_cos", "cost/align_seconds")
    for k in shown:
        if k in metrics:
            print(f"{k:32s} {metrics[k]:.4f}")
    for attr in ("turn", "direction", "speed", "limb"):
        k = f"val/align/pair_margin_{attr}"
        if k in metrics:
            print(f"{k:32s} {metrics[k]:+.4f} (base {metrics.get(k + '_base', float('nan')):+.4f})")
    print(f"wrote {out} (aligned_rows.safetensors, metrics.json, run.json, plots/)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("align", help="train MATE word-embedding rows on a dataset (the paper's method)")
    p.add_argument("--data", help="dataset folder (default: the synthetic corpus of the profile, in the workspace)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--out", help="run folder (default <workspace>/runs/align-s<seed>)")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_cmd_align)
