"""What foot locking (`gen.foot_lock`, `gen.smooth`) does to finished generator runs' test scores (issue 12's
foot-skating bar), raw and cleaned from the very same samples.

    python bench/foot_lock_bench.py --workspace W --out DIR [--runs mate-s0 baseline-s0 ...] [--smooth 1.0]

Each run folder under --out (default: every finished one) is loaded, sampled once for the whole test scoring, and
scored twice: the raw samples (which must reproduce the run's own metrics.json: checked) and the same samples
foot-locked. `root_travel_ratio` is the median over samples of how far the locked root travels against the raw
one: a lock that keeps the feet still by stopping the body scores well on skating, and this row says so. Results go
to <run>/foot_lock.json, so a cut-short invocation resumes; the table gives each arm's mean and t-based 95% interval
over seeds, raw | locked.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mate.evaluate.bootstrap import interval_text

METRICS = ("eval/fid", "eval/r_precision_top3", "eval/mm_dist", "probe/word_pair_acc", "probe/word_pair_acc_comp",
           "probe/word_pair_acc_turn", "probe/word_pair_acc_direction", "probe/foot_skate", "probe/jitter",
           "root_travel_ratio")


def _memo_sampler(run, steps: int, seen: dict):
    """Raw samples, each (texts, lengths, seed) call drawn once (kept in `seen`): the locked scoring sees the same
    motions."""

    def sample(texts, lengths, seed):
        key = (tuple(texts), tuple(int(n) for n in lengths), int(seed))
        if key not in seen:
            got = run.generator.sample(list(texts), list(lengths), n=1, seed=seed, steps=steps)
            seen[key] = [run.pack.denormalize(s[0]) for s in got]
        return seen[key]

    return sample


def _each(sample, post):
    """The sampler with `post` applied to each motion it returns."""
    return lambda texts, lengths, seed: [post(m) for m in sample(texts, lengths, seed)]


def _travel(m: np.ndarray) -> float:
    """How far the root ends from where it started (m)."""
    from mate.data.features import features_to_joints

    j = features_to_joints(np.asarray(m, dtype=np.float64))
    return float(np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]]))


def score_run(folder: Path, workspace: Path, smooth: float) -> dict:
    from mate.generate.cleanup import MAX_SLIDE

    path = folder / "foot_lock.json"
    settings = {"smooth": smooth, "max_slide": MAX_SLIDE}
    if path.is_file():
        done = json.loads(path.read_text())
        if done.get("settings") == settings:
            return done
    from mate.config import resolve
    from mate.evaluate.generated import score_sampler
    from mate.evaluate.retrieval import train_or_load
    from mate.evaluate.truth import load_annotations
    from mate.generate.cleanup import postprocess
    from mate.pipeline import load_run
    from mate.text.encoder import TextEncoder

    run = load_run(folder, workspace)
    cfg, pack = run.cfg, run.pack
    ev = train_or_load(pack, TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"]), cfg, workspace,
                       seed=cfg.seed_for("evaluator"))
    kw = dict(items=cfg["eval.samples"], pairs=cfg["eval.pairs"], repeats=cfg["eval.repeats"],
              seed=cfg.seed_for("eval"), notes=load_annotations(pack.source))
    seen: dict = {}
    raw = _memo_sampler(run, cfg["eval.sampler_steps"], seen)
    post = postprocess(resolve({"gen.foot_lock": True, "gen.smooth": smooth}))
    out = {"settings": settings, "raw": score_sampler(raw, pack, ev, "test", **kw),
           "locked": score_sampler(_each(raw, post), pack, ev, "test", **kw)}
    motions = [m for got in seen.values() for m in got]
    out["locked"]["root_travel_ratio"] = float(np.median([_travel(post(m)) / max(_travel(m), 1e-6) for m in motions]))
    recorded = json.loads((folder / "metrics.json").read_text())
    out["raw_matches_recorded"] = {k: abs(out["raw"][k] - recorded[k]) <= 1e-4 * max(1.0, abs(recorded[k]))
                                   for k in METRICS if k in recorded and k in out["raw"]}
    path.write_text(json.dumps(out, indent=1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="the generator bench's --out (one folder per run)")
    ap.add_argument("--runs", nargs="*", help="run folder names under --out (default: every finished run)")
    ap.add_argument("--smooth", type=float, default=1.0, help="gen.smooth before the lock (1.0: chosen on val)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = args.runs or sorted(p.name for p in args.out.iterdir() if (p / "metrics.json").is_file())
    by_arm: dict[str, list[dict]] = {}
    for name in names:
        print(f"scoring {name}", flush=True)
        got = score_run(args.out / name, args.workspace, args.smooth)
        bad = [k for k, ok in got["raw_matches_recorded"].items() if not ok]
        if bad:
            print(f"  warning: raw scores differ from {name}/metrics.json on {bad}")
        by_arm.setdefault(name.rsplit("-s", 1)[0], []).append(got)
    arms = list(by_arm)
    lines = ["| metric (test) | " + " | ".join(f"{a} raw | {a} locked" for a in arms) + " |",
             "|---" * (2 * len(arms) + 1) + "|"]
    for k in METRICS:
        cells = [interval_text([r[kind].get(k, np.nan) for r in by_arm[a]]) for a in arms for kind in ("raw", "locked")]
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    print(f"smooth {args.smooth}; runs per arm: " + ", ".join(f"{a} {len(by_arm[a])}" for a in arms) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
