"""Wall time of the optimal partition over a dataset-sized batch (what the prepare stage's localization pays):
2,000 clips of 10-50 motion tokens with 1-3 sub-texts, plain 256-d features and through a 256 -> 128 projection head,
on one thread. (The unit test checks what the partition returns; its speed is measured here.)

    python bench/partition_speed.py [--clips 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import numpy as np
    import torch

    from mate.evaluate.partition import partition_dataset

    torch.set_num_threads(1)
    rng = np.random.default_rng(7)
    feats = [rng.standard_normal((int(rng.integers(10, 51)), 256)).astype(np.float32) for _ in range(args.clips)]
    subs = [rng.standard_normal((int(rng.integers(1, 4)), 256)).astype(np.float32) for _ in range(args.clips)]
    proj = torch.nn.Linear(256, 128)

    def head(x):
        with torch.no_grad():
            return proj(x)

    for name, call in (("plain", lambda: partition_dataset(feats, subs, min_len=2)),
                       ("head", lambda: partition_dataset(feats, [s[:, :128] for s in subs], min_len=2, pool=head))):
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        every = ", ".join(f"{t:.2f}" for t in times)
        print(f"{name}: {args.clips} clips in {min(times):.2f} s (best of {args.repeats}; all {every})")


if __name__ == "__main__":
    main()
