"""The BENCHMARKS table of a grid ablation: per point, each figure's mean and Student-t 95% half-width over its seeds
(val and test word-level figures, R-Precision top-3, FID, the alignment's own measures), then per knob the blocked
analysis of variance (seed as block, `mate.sweep.importance.knob_effects`, the test `mate report` runs on the
objective) on each test figure (`TEST_FIGURES`: the table `mate report` adds to it), so "which settings matter" is
read on test as well as on the val objective.

    python bench/ablation_table.py W/sweeps/ablation_losses [--metrics M ...]

Reads the finished trials the sweep's closing table reads (`mate.sweep.report.collect`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

METRICS = ("val/probe/word_pair_acc", "val/probe/word_pair_acc_comp", "probe/word_pair_acc", "probe/word_pair_acc_comp",
           "probe/pair_acc", "eval/r_precision_top3", "eval/fid", "align/attn_in_span", "align/pair_margin_turn",
           "align/pair_margin_direction")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--metrics", nargs="+", default=list(METRICS))
    args = ap.parse_args()
    from mate.evaluate.bootstrap import t_interval
    from mate.sweep.importance import figure_effects, figure_effects_table
    from mate.sweep.report import collect
    from mate.sweep.space.model import label

    ident = json.loads((args.sweep / "space.json").read_text())
    base = ident["ofat"]["base"] if "ofat" in ident else {}
    rows = [(r["params"], r["config"], r["metrics"]) for r in collect(args.sweep) if r["status"] == "finished"]
    knobs = sorted({k for point, _, _ in rows for k in point if k != "seed"})
    points: dict[str, list[tuple[int, dict]]] = {}
    for point, _, m in rows:
        points.setdefault(label({k: v for k, v in point.items() if k != "seed"}, base), []).append((point["seed"], m))
    print("| point | seeds | " + " | ".join(f"`{m}`" for m in args.metrics) + " |")
    print("|---|---|" + "---:|" * len(args.metrics))
    for name, runs in points.items():
        cells = []
        for metric in args.metrics:
            values = [m[metric] for _, m in runs if m.get(metric) is not None]
            if not values:
                cells.append("-")
                continue
            mean, half = t_interval(values)
            cells.append(f"{mean:.3f} ± {half:.3f}" if len(values) > 1 else f"{mean:.3f}")
        seeds = ",".join(str(s) for s, _ in sorted(runs, key=lambda r: r[0]))
        print(f"| {name} | {seeds} | " + " | ".join(cells) + " |")
    print("\nPer knob, blocked by seed (F, p, partial eta squared; `within noise` at p >= 0.05):\n")
    # every knob's value in every trial (an ofat point names only the key it changes): from the resolved config
    records = [({**{k: config[k] for k in knobs}, "seed": point["seed"]}, m) for point, config, m in rows]
    head, table = figure_effects_table(figure_effects(records, knobs))
    print("| " + " | ".join(f"`{h}`" if "/" in h else h for h in head) + " |")
    print("|---" * len(head) + "|")
    for row in table:
        print("| " + " | ".join(c.replace(" matters", " **matters**") for c in row) + " |")

if __name__ == "__main__":
    main()
