"""The lowest foot skating a generator's output layer can express, before any learning error (issue 12's bar).

    python bench/skate_floor.py --data DIR [--workspace W] [--patches 1 2 4] [--widths 64 128 256] [--items 48]

The diffusion transformer ends in one linear layer from its width to `gen.patch` x 263 features, so every token it
predicts lies in an affine subspace of rank `gen.hidden`. The best such subspace for the training loss (MSE on the
normalised features) is the leading principal components of the training clips' patches; rebuilding real val clips
from them and scoring `probe/foot_skate` gives a floor no trained weights of that shape can go below (a floor for
the loss-optimal subspace, which is what training aims at). Foot skating reads millimetres of toe motion, so a
projection that keeps 99.9% of the variance can still miss the bar.
"""

from __future__ import annotations

import argparse

import numpy as np

from mate.data.pack import open_pack
from mate.evaluate.probes import foot_skate, jitter


def _patches(x: np.ndarray, p: int) -> np.ndarray:
    n = len(x) // p * p
    return x[:n].reshape(n // p, -1)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="the dataset folder (the bench corpus: <workspace>/data/synth-...)")
    ap.add_argument("--workspace", default="mate-runs")
    ap.add_argument("--patches", type=int, nargs="+", default=[1, 2, 4], help="gen.patch values")
    ap.add_argument("--widths", type=int, nargs="+", default=[64, 128, 256], help="gen.hidden values")
    ap.add_argument("--train-clips", type=int, default=600, help="training clips the components are fitted on")
    ap.add_argument("--items", type=int, default=48, help="val clips rebuilt and scored")
    args = ap.parse_args(argv)
    pack = open_pack(args.data, args.workspace, progress=False)
    train = [pack.normalize(np.asarray(pack.motion(int(i)), np.float64))
             for i in pack.split_indices("train")[: args.train_clips]]
    val = [pack.normalize(np.asarray(pack.motion(int(i)), np.float64)) for i in pack.split_indices("val")[: args.items]]
    real = [pack.denormalize(m.astype(np.float32)) for m in val]
    print(f"real val clips: foot_skate {np.mean([foot_skate(m) for m in real]):.3f} m/s, jitter "
          f"{np.mean([jitter(m) for m in real]):.0f} m/s^3 (the bar: 2x the real clips')\n")
    print("| gen.patch | gen.hidden (rank) | variance kept | foot_skate floor (m/s) | jitter (m/s^3) |")
    print("|---:|---:|---:|---:|---:|")
    for p in args.patches:
        x = np.concatenate([_patches(m, p) for m in train])
        mean = x.mean(0)
        _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
        for k in args.widths:
            if k > len(vt):
                continue
            basis = vt[:k]
            rebuilt = []
            for m in val:
                n = len(m) // p * p
                r = (_patches(m, p) - mean) @ basis.T @ basis + mean
                rebuilt.append(pack.denormalize(r.reshape(n, -1).astype(np.float32)))
            kept = (s[:k] ** 2).sum() / (s**2).sum()
            print(f"| {p} | {k} | {kept:.4f} | {np.mean([foot_skate(m) for m in rebuilt]):.3f} | "
                  f"{np.mean([jitter(m) for m in rebuilt]):.0f} |", flush=True)


if __name__ == "__main__":
    main()
