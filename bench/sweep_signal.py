"""Does a sweep's objective separate its configs? The spread between its trials against the spread between seeds of
one config, for every val figure the trials report (issue 25: "the default sweep's objective must have signal").

    python bench/sweep_signal.py --workspace W [--space search_spaces/smoke.yaml] [--seeds 1 2 3] [--set key=value]

Runs the space as it is plus `rerun: {top: 1, seeds: SEEDS}` (the best config again over those seeds), under the name
`<space>-signal` (each `--set key=value` becomes a constant), then reads every trial's per-epoch history. Per val
figure and per epoch that every trial reached: SD over the search's trials (between configs) and SD over the
replicates (between seeds), and their ratio; > 1 means the configs differ by more than a seed moves one of them.
Writes signal.md into the sweep's folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--space", type=Path, default=Path("search_spaces/smoke.yaml"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a constant of the measured space (repeatable)")
    args = ap.parse_args()
    import numpy as np

    from mate.config import parse_value
    from mate.sweep.report import collect

    doc = yaml.safe_load(args.space.read_text())
    name = f"{doc.get('name', args.space.stem)}-signal"
    doc.update(name=name, rerun={"top": 1, "seeds": args.seeds})
    for word in args.overrides:
        key, value = word.split("=", 1)
        doc.setdefault("constants", {})[key] = parse_value(key, value)
    args.workspace.mkdir(parents=True, exist_ok=True)
    space = args.workspace / f"{name}.yaml"
    space.write_text(yaml.safe_dump(doc, sort_keys=False))
    subprocess.run([sys.executable, "-m", "mate", "sweep", str(space), "--workspace", str(args.workspace), "--quiet"],
                   check=True)

    rows = [r for r in collect(args.workspace / "sweeps" / name) if r["status"] in ("finished", "stopped")]
    history = {r["trial"]: [json.loads(x) for x in (Path(r["run_dir"]) / "history.jsonl").read_text().splitlines()
                            if x.strip()] for r in rows if (Path(r["run_dir"]) / "history.jsonl").is_file()}
    search = [r["trial"] for r in rows if not r.get("rerun_of") and r["trial"] in history]
    reps = [r["trial"] for r in rows if r.get("rerun_of") and r["trial"] in history]
    metrics = sorted({k for h in history.values() for line in h for k in line
                      if k.startswith("val/") and not k.startswith("val/align") and not k.endswith("_ci95")})
    lines = [f"{name}: {len(search)} search trials, {len(reps)} replicates of one config (seeds {args.seeds})", "",
             "| val figure | epoch | SD between configs (n) | SD between seeds (n) | ratio |",
             "|---|---:|---|---|---:|"]
    for epoch in sorted({line["gen/epoch"] for h in history.values() for line in h}):
        for m in metrics:
            def at(trial: str) -> float | None:
                return next((line.get(m) for line in history[trial] if line["gen/epoch"] == epoch), None)

            a = [v for v in (at(t) for t in search) if v is not None]
            b = [v for v in (at(t) for t in reps) if v is not None]
            if len(a) < 2 or len(b) < 2:
                continue
            sa, sb = float(np.std(a, ddof=1)), float(np.std(b, ddof=1))
            ratio = sa / sb if sb > 0 else float("inf") if sa > 0 else float("nan")
            lines.append(f"| {m} | {int(epoch)} | {sa:.4f} ({len(a)}) | {sb:.4f} ({len(b)}) | {ratio:.2f} |")
    text = "\n".join(lines)
    (args.workspace / "sweeps" / name / "signal.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
