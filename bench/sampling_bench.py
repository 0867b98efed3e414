"""Sampling settings of a trained run, chosen on val: every combination of the given values scored on the val split.

    python bench/sampling_bench.py --run RUN --workspace W [--items 128] [--threads 2] \
        --grid gen.guidance=1,2.5,4 gen.top_k=0,25 gen.temperature=1 [gen.iterations=10]

Sampling keys change nothing the generator learned, so one training serves the whole grid. Each row is
`score_sampler` on the same fixed val subset (what the per-epoch objectives read, with `--items` of them) with one
repetition; the table is sorted by val R-Precision top-3. Writes sampling.md and sampling.json beside the run.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

SHOWN = ("val/eval/fid", "val/eval/r_precision_top3", "val/probe/word_pair_acc", "val/probe/word_pair_acc_comp",
         "val/probe/foot_skate", "val/probe/jitter")
SAMPLING_KEYS = ("gen.guidance", "gen.top_k", "gen.temperature", "gen.iterations", "eval.sampler_steps")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--workspace", type=Path)
    ap.add_argument("--items", type=int, default=128, help="val items scored per setting")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--grid", nargs="+", required=True, metavar="key=v1,v2")
    args = ap.parse_args()

    import torch
    from mate.config import parse_value
    from mate.evaluate.generated import score_sampler
    from mate.evaluate.retrieval import train_or_load
    from mate.evaluate.truth import load_annotations
    from mate.generate.cleanup import postprocess
    from mate.pipeline import load_run
    from mate.text.encoder import TextEncoder

    torch.set_num_threads(args.threads)
    grid = {}
    for word in args.grid:
        key, values = word.split("=", 1)
        if key not in SAMPLING_KEYS:
            raise SystemExit(f"{key}: not a sampling key ({', '.join(SAMPLING_KEYS)})")
        grid[key] = [parse_value(key, v) for v in values.split(",")]
    run = load_run(args.run, args.workspace)
    info = json.loads((args.run / "run.json").read_text())
    workspace = args.workspace or Path(info["workspace"])
    base = TextEncoder.load(run.cfg["encoder.path"], run.cfg["encoder.family"])
    evaluator = train_or_load(run.pack, base, run.cfg, workspace, seed=run.cfg.seed_for("evaluator"), progress=False)
    notes = load_annotations(info["data_dir"])
    gen, rows = run.generator, []
    for values in itertools.product(*grid.values()):
        setting = dict(zip(grid, values))
        for k, v in setting.items():
            if k in gen.cfg:
                gen.cfg[k] = v
        post = postprocess(run.cfg)

        def sample(texts, lengths, seed):
            return [post(run.pack.denormalize(s[0])) for s in gen.sample(texts, lengths, n=1, seed=seed)]

        m = score_sampler(sample, run.pack, evaluator, "val", items=args.items, pairs=args.items, lexicon=args.items,
                          repeats=1, seed=run.cfg.seed_for("eval"), notes=notes)
        rows.append({**setting, **{k: m.get(k) for k in SHOWN}})
        print(setting, {k.split("/")[-1]: round(m[k], 3) for k in SHOWN if k in m}, flush=True)
    rows.sort(key=lambda r: -(r["val/eval/r_precision_top3"] or 0))
    keys = list(grid) + list(SHOWN)
    lines = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    lines += ["| " + " | ".join(f"{r[k]:.3f}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |"
              for r in rows]
    (args.run / "sampling.md").write_text("\n".join(lines) + "\n")
    (args.run / "sampling.json").write_text(json.dumps(rows, indent=1))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
