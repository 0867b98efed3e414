"""Why a trained generator's feet slide: foot skating and jitter of its samples under variations that each remove
one suspect (issue 12's `probe/foot_skate` bar).

    python bench/skate_diagnosis.py --run RUN_DIR [--workspace W] [--items 48] [--seed 0] [--threads 2]

Rows: real test clips; the generator's samples as scored (its guidance and sampler steps); the same smoothed over
time (if smoothing fixes it, it was jitter); other guidance scales and more sampler steps; real and generated with
the root translation zeroed (how much of the toe speed the root's translation cancels or adds). The last column is
the mean root step per frame (m): generated roots that outrun real ones point at the root-velocity channels.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mate.data.features import gaussian_smooth
from mate.evaluate.probes import foot_skate, jitter
from mate.pipeline import load_run


def _row(name: str, motions: list[np.ndarray]) -> str:
    skate = np.mean([foot_skate(m) for m in motions])
    jit = np.mean([jitter(m) for m in motions])
    step = np.mean(np.concatenate([np.linalg.norm(m[:, 1:3], axis=1) for m in motions]))
    return f"| {name} | {skate:.3f} | {jit:.0f} | {step:.4f} |"


def _no_root_translation(motions: list[np.ndarray]) -> list[np.ndarray]:
    out = [m.copy() for m in motions]
    for m in out:
        m[:, 1:3] = 0.0
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a finished `mate train` run folder")
    ap.add_argument("--workspace", default=None, help="the workspace the run's dataset pack lives in")
    ap.add_argument("--items", type=int, default=48, help="test items to sample (one sample each)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    run = load_run(args.run, args.workspace)
    pack = run.pack
    idx = [int(i) for i in pack.split_indices("test")[: args.items]]
    texts = [pack.captions(i)[0].text for i in idx]
    lengths = [int(pack.lengths[i]) for i in idx]
    real = [np.asarray(pack.motion(i), dtype=np.float32) for i in idx]

    def sample(**kw) -> list[np.ndarray]:
        got = run.generator.sample(texts, lengths, n=1, seed=args.seed, **kw)
        return [pack.denormalize(s[0]) for s in got]

    guidance, steps = run.cfg["gen.guidance"], run.cfg["eval.sampler_steps"]
    gen = sample()
    rows = ["| samples | probe/foot_skate (m/s) | probe/jitter (m/s^3) | mean root step (m/frame) |",
            "|---|---:|---:|---:|", _row("real clips", real),
            _row(f"generated (guidance {guidance}, {steps} steps)", gen)]
    rows += [_row(f"generated, smoothed over time (sigma {s} frames)", [gaussian_smooth(m, s) for m in gen])
             for s in (1.0, 2.0)]
    rows += [_row(f"generated, guidance {g}", sample(guidance=g)) for g in (1.0, 1.5) if g != guidance]
    rows.append(_row(f"generated, {steps * 2} sampler steps", sample(steps=steps * 2)))
    rows += [_row("real, root translation zeroed", _no_root_translation(real)),
             _row("generated, root translation zeroed", _no_root_translation(gen))]
    print("\n".join(rows))


if __name__ == "__main__":
    main()
