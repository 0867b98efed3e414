"""The downstream generator against text-blind baselines, and MATE against the unaligned baseline (issue 12).

    python bench/generator_bench.py --workspace W --out DIR [--seeds 0 1 2] [--arms ...] [--threads 2] [key=value ...]

Rows of the table:
- `real`: the test items' own motion (the reference: its FID is 0, its foot skating is what generated motion is
  held to); `mean motion` and `random clip`: samplers that ignore the text (what a generator must beat);
- `baseline` (`align.enabled=false`) and `mate`: one `mate train` run per seed (profile=bench unless overridden),
  each in its own folder under --out; `*-tokens`: the same with `gen.cond=tokens`, first seed only.
A finished run is read back, an unfinished one resumes from its checkpoint (`mate train` does that), so the
comparison can span sessions; `--collect` only reads what is finished. Cells are the mean and t-based 95% interval
over seeds; `val/` rows are what settings were chosen on, the rest is test. Writes table.md and curves.png
(val/probe/word_pair_acc against generator steps).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mate.evaluate.bootstrap import interval_text

ARMS = {"baseline": ["align.enabled=false"], "mate": [],
        "baseline-tokens": ["align.enabled=false", "gen.cond=tokens"], "mate-tokens": ["gen.cond=tokens"]}
METRICS = ("eval/fid", "eval/r_precision_top1", "eval/r_precision_top3", "eval/mm_dist", "eval/diversity",
           "probe/word_pair_acc", "probe/word_pair_acc_comp", "probe/word_pair_acc_turn",
           "probe/word_pair_acc_direction", "probe/word_pair_acc_speed", "probe/word_pair_acc_limb",
           "probe/action_acc", "probe/turn_acc", "probe/direction_acc", "probe/speed_acc", "probe/limb_acc",
           "probe/foot_skate", "probe/jitter", "val/eval/fid", "val/eval/r_precision_top3", "val/probe/word_pair_acc",
           "cost/gen_seconds", "cost/trial_seconds")


def run_one(args, arm: str, seed: int) -> dict | None:
    folder = args.out / f"{arm}-s{seed}"
    if (folder / "metrics.json").is_file():
        return json.loads((folder / "metrics.json").read_text())
    if args.collect:
        return None
    cmd = [sys.executable, "-m", "mate", "train", "--workspace", str(args.workspace), "--out", str(folder),
           "--quiet", "--previews", "1" if seed == args.seeds[0] else "0", "--threads", str(args.threads),
           "profile=bench", f"seed={seed}", *args.overrides, *ARMS[arm]]
    print("$", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, check=True)
    return json.loads((folder / "metrics.json").read_text())


def reference_rows(args) -> dict[str, list[dict]]:
    """real / mean motion / random clip on the test split, scored exactly like a generator."""
    path = args.out / "references.json"
    if path.is_file():
        return json.loads(path.read_text())
    from mate.config import resolve
    from mate.data.pack import open_pack
    from mate.data.source import resolve_dataset
    from mate.evaluate.generated import fixed_items, mean_motion_sampler, random_clip_sampler, score_sampler
    from mate.evaluate.retrieval import train_or_load
    from mate.evaluate.truth import load_annotations
    from mate.text.encoder import TextEncoder

    cfg = resolve(["profile=bench", *args.overrides])
    data = resolve_dataset(cfg, args.workspace)
    pack = open_pack(data, args.workspace)
    ev = train_or_load(pack, TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"]), cfg, args.workspace,
                       seed=cfg.seed_for("evaluator"))
    by_text = {it["text"]: pack.denormalize(it["motion"]) for it in fixed_items(pack, "test")}
    mean = mean_motion_sampler(pack)

    def real(texts, lengths, seed):  # minimal-pair captions have no real clip: the mean motion stands in
        return [by_text[t][:n] if t in by_text else mean([t], [n], seed)[0] for t, n in zip(texts, lengths)]

    notes = load_annotations(data)
    kw = dict(items=cfg["eval.samples"], pairs=cfg["eval.pairs"], lexicon=cfg["eval.lexicon_pairs"],
              repeats=cfg["eval.repeats"], seed=cfg.seed_for("eval"), notes=notes)
    rows = {"real": [score_sampler(real, pack, ev, "test", **kw)],
            "mean motion": [score_sampler(mean, pack, ev, "test", **kw)],
            "random clip": [score_sampler(random_clip_sampler(pack, "train", s), pack, ev, "test", **kw)
                            for s in args.seeds]}
    for name in ("real", "mean motion", "random clip"):
        rows[name] = [{k: float(v) for k, v in r.items()} for r in rows[name]]
    rows["real"][0] = {k: v for k, v in rows["real"][0].items() if not k.startswith(("probe/word_pair", "probe/pair"))}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rows, indent=1))
    return rows


def table(rows: dict[str, list[dict]]) -> str:
    names = list(rows)
    lines = ["| metric | " + " | ".join(f"{n} (n={len(rows[n])})" for n in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for k in METRICS:
        cells = [interval_text([r.get(k) for r in rows[n]]) for n in names]
        if any(c != "-" for c in cells):
            lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curves(args, arms: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for arm in arms:
        for seed in args.seeds:
            path = args.out / f"{arm}-s{seed}" / "history.jsonl"
            if not path.is_file():
                continue
            hist = [json.loads(x) for x in path.read_text().splitlines()]
            steps = np.cumsum([h["gen/steps"] for h in hist])
            ax.plot(steps, [h["val/probe/word_pair_acc"] for h in hist], color="C1" if arm.startswith("mate") else
                    "C0", ls="--" if "tokens" in arm else "-", alpha=0.8, label=f"{arm} s{seed}")
    ax.set_xlabel("generator steps")
    ax.set_ylabel("val/probe/word_pair_acc")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(args.out / "curves.png")
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, default=Path("mate-runs"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--collect", action="store_true", help="train nothing: the table and curves of the runs done")
    ap.add_argument("overrides", nargs="*", help="key=value for every run")
    args = ap.parse_args()
    rows = reference_rows(args)
    for seed in args.seeds:  # seed by seed, so a comparison cut short still has paired arms
        for arm in args.arms:
            if seed == args.seeds[0] or not arm.endswith("tokens"):
                done = run_one(args, arm, seed)
                if done is not None:
                    rows.setdefault(arm, []).append(done)
    curves(args, args.arms)
    text = f"overrides: {' '.join(args.overrides) or '(none)'}; seeds {args.seeds}\n\n{table(rows)}"
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
