"""MATE's word-level evidence against the frozen-rows control, over seeds (BENCHMARKS.md, issue 11).

    python bench/align_bench.py --workspace W --out DIR [--seeds 0 1 2] [--arms mate control] [key=value ...]

Each (arm, seed) is one `mate align` run (profile=bench unless overridden) in its own folder under --out; a finished
run is read back, not re-run, so the comparison survives a crash and can be extended seed by seed. Arms:
- `mate`: the method as configured;
- `control`: `align.train_rows=false` (the same heads and schedule, rows frozen, L_sent only).
The table shows each metric's mean and t-based 95% interval over seeds, on val (what settings were chosen on) and on
test (what is reported), next to the base model's value.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from mate.evaluate.bootstrap import interval_text

ARMS = {"mate": [], "control": ["align.train_rows=false"]}
ATTRS = ("turn", "direction", "speed", "limb")
ROWS = ([f"align/pair_margin_{a}" for a in ATTRS] + [f"align/syn_cos_{a}" for a in ATTRS]
        + [f"align/pair_cos_{a}" for a in ATTRS]
        + ["align/word_pair_acc", "align/word_pair_acc_comp", "align/r1", "align/attn_in_span", "align/row_cos",
           "cost/align_seconds"])


def run_one(workspace: Path, out: Path, arm: str, seed: int, overrides: list[str]) -> dict:
    folder = out / f"{arm}-s{seed}"
    if (folder / "metrics.json").is_file():
        return json.loads((folder / "metrics.json").read_text())
    cmd = [sys.executable, "-m", "mate", "align", "--workspace", str(workspace), "--out", str(folder), "--quiet",
           "profile=bench", f"seed={seed}", *overrides, *ARMS[arm]]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((folder / "metrics.json").read_text())


def table(results: dict[str, list[dict]], prefix: str) -> str:
    arms = list(results)
    lines = ["| metric | base | " + " | ".join(arms) + " |", "|---" * (len(arms) + 2) + "|"]
    for name in ROWS:
        key = prefix + name
        base = [r[key + "_base"] for r in next(iter(results.values())) if key + "_base" in r]
        cells = [interval_text([r.get(key) for r in results[a]]) for a in arms]
        if all(c == "-" for c in cells):
            continue
        lines.append(f"| {key} | {base[0]:.3f} | " if base else f"| {key} | | ")
        lines[-1] += " | ".join(cells) + " |"
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path("mate-runs"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("overrides", nargs="*", help="key=value for every arm (e.g. align.row_lr=3e-3)")
    args = ap.parse_args()
    results = {arm: [run_one(args.workspace, args.out, arm, s, args.overrides) for s in args.seeds]
               for arm in args.arms}
    report = [f"overrides: {' '.join(args.overrides) or '(none)'}; seeds {args.seeds}", "", "val (choosing):", "",
              table(results, "val/"), "", "test (reporting):", "", table(results, "")]
    text = "\n".join(report)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
