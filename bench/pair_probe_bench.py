"""The lexicon pairs (`probe/pair_*`, any dataset) beside the synthetic corpus's annotated pairs
(`probe/word_pair_acc_*`) on finished runs: do the two probes agree on which run renders the words better?

    python bench/pair_probe_bench.py --runs DIR/mate-s0 DIR/baseline-s0 ... [--compare mate baseline] [--threads 1]
    python bench/pair_probe_bench.py --sweep W/sweeps/ablation_losses --compare base align.enabled=false

With --runs, each run's test split is scored with the lexicon pairs only (`eval.lexicon_pairs` of them, sampled as a
trial samples); the annotated figures come from the run's own metrics.json. Writes pair_probes.json beside each run (a
later call reuses it) and prints, per attribute, the mean of each probe over the runs of each arm (a run's arm is its
folder name without the `-s<seed>` suffix) and the sign of arm1 - arm2 for both probes. With --sweep, the trials of a
grid sweep already hold both probes in their metrics.json (a trial scores the lexicon pairs itself); a trial's arm is
its point's label (`base`, `align.w_sent=0.0`, ...).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ATTRIBUTES = ("turn", "direction", "speed", "limb")


def score_run(run_dir: Path, threads: int) -> dict[str, float]:
    out = run_dir / "pair_probes.json"
    if out.is_file():
        return json.loads(out.read_text())
    import torch

    from mate.evaluate.generated import ITEMS_SEED, fixed_items
    from mate.evaluate.pairs import pair_accuracy
    from mate.generate.cleanup import postprocess
    from mate.pipeline import load_run

    torch.set_num_threads(threads)
    run = load_run(run_dir)
    post = postprocess(run.cfg)

    def sample(texts, lengths, seed):
        return [post(run.pack.denormalize(s[0])) for s in run.generator.sample(texts, lengths, n=1, seed=seed)]

    items = fixed_items(run.pack, "test", 0, ITEMS_SEED)
    got = pair_accuracy(items, sample, run.cfg.seed_for("eval"), n=run.cfg["eval.lexicon_pairs"] or None,
                        batch_size=64, subset_seed=ITEMS_SEED)
    out.write_text(json.dumps(got, indent=1))
    return got


def sweep_arms(sweep_dir: Path) -> dict[str, list[dict]]:
    """The finished trials of a grid sweep (`mate.sweep.report.collect`), grouped by their point's label, in seed
    order."""
    from mate.sweep.report import collect
    from mate.sweep.space.model import label

    ident = json.loads((sweep_dir / "space.json").read_text())
    base = ident.get("ofat", {}).get("base", {}) if isinstance(ident.get("ofat"), dict) else {}
    arms: dict[str, list[dict]] = {}
    for r in collect(sweep_dir):
        if r["status"] == "finished" and "probe/pair_acc" in r["metrics"]:
            point = {k: v for k, v in r["params"].items() if k != "seed"}
            arms.setdefault(label(point, base), []).append({**r["metrics"], "seed": r["params"]["seed"]})
    return {arm: sorted(rows, key=lambda r: r["seed"]) for arm, rows in arms.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, nargs="+")
    ap.add_argument("--sweep", type=Path, help="a grid sweep's folder (W/sweeps/NAME): its finished trials")
    ap.add_argument("--compare", nargs=2, metavar=("ARM1", "ARM2"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import numpy as np

    if bool(args.runs) == bool(args.sweep):
        ap.error("give --runs or --sweep")
    arms: dict[str, list[dict]] = sweep_arms(args.sweep) if args.sweep else {}
    for run in args.runs or []:
        lex = score_run(run, args.threads)
        ann = json.loads((run / "metrics.json").read_text())
        row = {**lex, **{k: v for k, v in ann.items() if k.startswith("probe/word_pair_acc")}}
        arms.setdefault(re.sub(r"-s\d+$", "", run.name), []).append(row)
        print(run.name, {k.split("/")[-1]: round(v, 3) for k, v in row.items() if "acc" in k}, flush=True)
    keys = [("all", "probe/word_pair_acc", "probe/pair_acc")] + [
        (a, f"probe/word_pair_acc_{a}", f"probe/pair_acc_{a}") for a in ATTRIBUTES]
    lines = ["| attribute | " + " | ".join(f"{arm} annotated | {arm} lexicon" for arm in arms) + " |"]
    lines.append("|---" * (1 + 2 * len(arms)) + "|")
    for name, ann, lex in keys:
        cells = []
        for rows in arms.values():
            for k in (ann, lex):
                vals = [r[k] for r in rows if k in r]
                cells.append(f"{np.mean(vals):.3f} (n={len(vals)})" if vals else "-")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    print("\n".join(lines))
    if args.compare:
        a, b = (arms[x] for x in args.compare)
        print(f"\n{args.compare[0]} - {args.compare[1]}, per attribute (points): annotated, lexicon, same sign?")
        paired = args.sweep is not None and [r["seed"] for r in a] == [r["seed"] for r in b]  # the same seeds
        for name, ann, lex in keys:
            d = [100 * (np.mean([r[k] for r in a if k in r]) - np.mean([r[k] for r in b if k in r]))
                 for k in (ann, lex)]
            per_seed = ""
            if paired:
                seeds = [[100 * (x[k] - y[k]) for x, y in zip(a, b)] for k in (ann, lex)]
                per_seed = "  per seed: " + " | ".join(", ".join(f"{v:+.1f}" for v in vals) for vals in seeds)
            print(f"  {name}: {d[0]:+.1f}, {d[1]:+.1f}, {'yes' if np.sign(d[0]) == np.sign(d[1]) else 'NO'}{per_seed}")


if __name__ == "__main__":
    main()
