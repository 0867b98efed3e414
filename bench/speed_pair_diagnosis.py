"""Why a trained run loses the speed minimal pairs: each twin's tempo against its action's speed thresholds.

    python bench/speed_pair_diagnosis.py --run RUN_DIR [--workspace W] [--split test] [--seed 0] [--threads 1] \
        [--set gen.temperature=1.5 ...]

A speed pair counts only when the probe reads "quickly" from one twin AND "slowly" from the other, each against the
action's absolute thresholds (`rules.SPEED_THRESHOLDS`). This samples the split's speed pairs as the scorer does
(`sample_pairs`: both twins with the same noise) and prints, for ordinary and compositional pairs apart, where each
twin's tempo lands on a scale where 0 is the slow threshold and 1 the quick one: a generator whose motion is too
slow throughout loses the pairs at the "quickly" twin while still ordering the two twins the right way round.
`--set` changes sampling keys (`sampling_bench.SAMPLING_KEYS`) of the trained generator, to try a sampling fix.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from mate.config import parse_value
from mate.data.synth import rules
from mate.evaluate.probes import read_action, sample_pairs, select_pairs
from mate.evaluate.truth import load_pairs
from mate.generate.cleanup import postprocess
from mate.pipeline import load_run
from sampling_bench import SAMPLING_KEYS  # bench/ is on the path of a script run from it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--split", default="test")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", nargs="*", default=[], metavar="key=value", help="sampling keys to change")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    run = load_run(args.run, args.workspace)
    usable = [k for k in SAMPLING_KEYS if k in run.generator.cfg]
    for word in args.set:
        key, value = word.split("=", 1)
        if key not in usable:
            raise SystemExit(f"{key}: not a sampling key of this generator ({', '.join(usable)})")
        run.generator.cfg[key] = parse_value(key, value)
    info = json.loads((args.run / "run.json").read_text())
    pairs = [p for p in select_pairs(load_pairs(info["data_dir"], args.split)) if p["attribute"] == "speed"]
    if not pairs:
        raise SystemExit(f"{info['data_dir']}: no speed pairs in the {args.split} split")
    post = postprocess(run.cfg)

    def sample(texts, lengths, seed):
        return [post(run.pack.denormalize(s[0])) for s in run.generator.sample(texts, lengths, n=1, seed=seed)]

    motions_a, motions_b = sample_pairs(pairs, sample, args.seed)
    print("| pairs | n | 'quickly' twin: median tempo | read quickly | 'slowly' twin: median tempo | read slowly "
          "| quickly twin faster | both twins' action read right | actions |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for comp in (False, True):
        quick, slow, acted, actions = [], [], [], Counter()
        for p, a, b in zip(pairs, motions_a, motions_b):
            if bool(p.get("compositional")) != comp:
                continue
            span = (p["span"][0], min(p["span"][1], len(a)))
            lo, hi = rules.SPEED_THRESHOLDS[p["action"]]
            ta, tb = ((rules.tempo(m, span, p["action"]) - lo) / (hi - lo) for m in (a, b))
            q, s = (ta, tb) if p["value_a"] == "quickly" else (tb, ta)
            quick.append(q)
            slow.append(s)
            acted.append(read_action(a, span) == p["action"] == read_action(b, span))
            actions[p["action"]] += 1
        if not quick:
            continue
        quick, slow = np.array(quick), np.array(slow)
        print(f"| {'compositional' if comp else 'ordinary'} | {len(quick)} | {np.median(quick):+.2f} | "
              f"{np.mean(quick > 1):.2f} | {np.median(slow):+.2f} | {np.mean(slow < 0):.2f} | "
              f"{np.mean(quick > slow):.2f} | {np.mean(acted):.2f} | "
              + ", ".join(f"{k} {v}" for k, v in actions.most_common()) + " |")


if __name__ == "__main__":
    main()
