"""The lexicon pairs (`probe/pair_*`, any dataset) beside the synthetic corpus's annotated pairs
(`probe/word_pair_acc_*`) on finished runs: do the two probes agree on which run renders the words better?

    python bench/pair_probe_bench.py --runs DIR/mate-s0 DIR/baseline-s0 ... [--compare mate baseline] [--threads 1]

Each run's test split is scored with the lexicon pairs only (`eval.lexicon_pairs` of them, sampled as a trial
samples); the annotated figures come from the run's own metrics.json. Writes pair_probes.json beside each run (a
later call reuses it) and prints, per attribute, the mean of each probe over the runs of each arm (a run's arm is its
folder name without the `-s<seed>` suffix) and the sign of arm1 - arm2 for both probes.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=Path, nargs="+", required=True)
    ap.add_argument("--compare", nargs=2, metavar=("ARM1", "ARM2"))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import numpy as np

    arms: dict[str, list[dict]] = {}
    for run in args.runs:
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
        for name, ann, lex in keys:
            d = [100 * (np.mean([r[k] for r in a if k in r]) - np.mean([r[k] for r in b if k in r]))
                 for k in (ann, lex)]
            print(f"  {name}: {d[0]:+.1f}, {d[1]:+.1f}, {'yes' if np.sign(d[0]) == np.sign(d[1]) else 'NO'}")


if __name__ == "__main__":
    main()
