"""Platform overhead (issue 13): the same trials in a plain Python loop and through `mate sweep`'s machinery.

    python bench/overhead_bench.py --workspace W [--trials 4] [--threads 1] [--epochs 5] [--steps 80]

A grid of `--trials` smoke-profile points that differ only in `gen.lr` (so they share one alignment, built once in an
untimed warm-up: neither side pays it), each long enough (>= 60 s) for the comparison to mean something. Both sides
run one trial at a time with `--threads` torch threads. The loop calls `run_trial` directly; the sweep is
`run_sweep` (prepare stage, Tuner with its trial actors, checkpoints every epoch, the MLflow callback, the report),
with `ray.init` done and timed beforehand, since a cluster pays it once. Per-trial start-up (actor start, imports,
restoring the config) is the part of the sweep's fit window not spent inside the trial function.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml


def write_space(path: Path, trials: int, threads: int, epochs: int, steps: int) -> None:
    lrs = [round(1e-3 * (0.8 ** i), 6) for i in range(trials)]
    path.write_text(yaml.safe_dump({
        "name": "overhead", "description": "platform overhead bench (bench/overhead_bench.py)", "profile": "smoke",
        "constants": {"gen.steps": steps}, "grid": {"gen.lr": lrs}, "seeds": [0],
        "objective": {"metric": "val/eval/r_precision_top3", "mode": "max"},
        "budget": {"max_epochs": epochs, "cpus_per_trial": threads, "max_concurrent": 1}}, sort_keys=False))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workspace", type=Path, required=True)
    ap.add_argument("--trials", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--steps", type=int, default=80, help="generator steps per epoch")
    ap.add_argument("--worker-niceness", type=int, help="RAY_worker_niceness for the local Ray (Ray's default: 15, "
                    "so trial workers yield to every other process on their core)")
    ap.add_argument("--name", default="overhead", help="the sweep's name (a new one to measure again in the same "
                    "workspace)")
    args = ap.parse_args()
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.worker_niceness is not None:
        os.environ["RAY_worker_niceness"] = str(args.worker_niceness)
    import ray

    from mate.pipeline import run_trial
    from mate.sweep.driver import SweepOptions, run_sweep
    from mate.sweep.space import load_space

    ws = args.workspace.resolve()
    ws.mkdir(parents=True, exist_ok=True)
    space_path = ws / "overhead.yaml"
    write_space(space_path, args.trials, args.threads, args.epochs, args.steps)
    space = load_space(space_path)

    t = time.perf_counter()
    ray.init(include_dashboard=False, log_to_driver=False, num_cpus=os.cpu_count())
    ray_init = time.perf_counter() - t
    pinned = run_sweep(space_path, SweepOptions(workspace=ws, name="overhead-prepare", prepare_only=True,
                                                progress=False), log=lambda s: None)["pinned"]
    configs = [space.trial_config(p, extra=pinned) for p in space.trials()]
    print("warm-up (alignment, imports; untimed) ...", flush=True)
    run_trial(configs[0], None, workspace=ws, out=ws / "loop" / "warmup", threads=args.threads, progress=False,
              log=lambda s: None)

    loop = []
    for i, cfg in enumerate(configs):
        t = time.perf_counter()
        run_trial(cfg, None, workspace=ws, out=ws / "loop" / f"t{i}", threads=args.threads, progress=False,
                  log=lambda s: None)
        loop.append(time.perf_counter() - t)
        print(f"loop trial {i}: {loop[-1]:.1f} s", flush=True)

    marks: list[tuple[float, str]] = []
    t0 = time.perf_counter()
    run_sweep(space_path, SweepOptions(workspace=ws, name=args.name, progress=False),
              log=lambda s: marks.append((time.perf_counter() - t0, s)))
    sweep = time.perf_counter() - t0
    fit_start = next(m for m, s in marks if "grid trial(s)" in s)
    fit_end = next((m for m, s in marks if m > fit_start), sweep)
    inside = []
    for proc in sorted(p for p in ws.rglob("process.json") if f"{args.name}/tune" in p.as_posix()):
        p = json.loads(proc.read_text())
        inside.append(p["reported"] - p["started"])
    fit = fit_end - fit_start
    total_loop = sum(loop)
    out = {"ray_init_s": ray_init, "loop_s": loop, "loop_total_s": total_loop, "sweep_s": sweep, "fit_s": fit,
           "before_fit_s": fit_start, "after_fit_s": sweep - fit_end, "inside_trial_s": inside,
           "overhead_whole": sweep / total_loop - 1, "overhead_fit": fit / total_loop - 1,
           "startup_per_trial_s": (fit - sum(inside)) / max(1, len(inside))}
    (ws / f"{args.name}.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
