"""Search efficiency as a tabular benchmark (issue 13b): replay ASHA + TPE against a recorded grid.

    python bench/search_replay.py --sweep W/sweeps/search_grid [--sweep-seeds 0 1 2 3 4 5 6 7 8 9] [--out DIR]

The grid (bench/search_grid.yaml, recorded once with `mate ablate`) holds every config's per-epoch val curve and
cost for 3 seeds. Each replay is one simulated `mate sweep`: Optuna's TPE (seeded, as `mate sweep` seeds it) picks
among the grid's points, each trial replays one recorded seed of its config epoch by epoch, and ASHA (asynchronous
successive halving, reduction factor 4, grace period 1: the rule `mate sweep` uses) stops trials whose value at a
rung falls below the top quarter recorded there; stopped trials are told to Optuna as PRUNED, finished ones
COMPLETE, with every epoch's value reported as an intermediate. Two trials run at once on a simulated clock.

Cost is trial-seconds: the recorded seconds of every epoch a trial ran, plus its alignment the first time the
replay needs that alignment (trials that share one reuse it, as they do in a real sweep). Success: a trial finishes
with a config whose grid mean lies within the grid-best config's 95% interval. The figure: trial-seconds to success
over the whole grid's trial-seconds; goal median <= 40%. Random search without ASHA is shown beside it, and a
stricter goal (one of the `--top` best configs by mean) beside the interval one, which 3 seeds make lenient.
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mate.evaluate.bootstrap import t_interval

RF = 4  # ASHA's reduction factor (Ray's default, the one mate sweep runs)
ALIGN_KEYS_PREFIX = "align."


@dataclass
class Run:
    """One recorded trial: a config, a seed, its per-epoch objective and seconds, its alignment cost."""

    config: tuple
    seed: int
    values: list[float]
    seconds: list[float]  # per epoch, the alignment it built (if any) taken out
    align_key: tuple
    align_seconds: float


def load_grid(sweep_dir: Path, metric: str) -> tuple[list[str], dict[tuple, list[Run]]]:
    runs: list[Run] = []
    names: list[str] = []
    for params_path in sorted(sweep_dir.glob("tune/run-*/*/params.json")):
        folder = params_path.parent
        result = folder / "result.json"
        if not result.is_file():
            continue
        rows = [json.loads(x) for x in result.read_text().splitlines() if x.strip()]
        if not rows:
            continue
        point = dict(json.loads(params_path.read_text())["trial"])
        seed = int(point.pop("seed"))
        names = sorted(point)
        rows.sort(key=lambda r: r["gen/epoch"])
        built = float(rows[0].get("cost/align_seconds", 0.0))
        secs = [float(r["time_this_iter_s"]) for r in rows]
        secs[0] -= built
        align = tuple((k, point[k]) for k in names if k.startswith(ALIGN_KEYS_PREFIX)) + (("seed", seed),)
        runs.append(Run(tuple(point[k] for k in names), seed, [float(r[metric]) for r in rows], secs, align, built))
    if not runs:
        raise SystemExit(f"{sweep_dir}: no finished trials under tune/run-*/ (record the grid first)")
    align_cost: dict[tuple, float] = {}
    for r in runs:  # what an alignment costs when built, whichever trial built it in the recording
        align_cost[r.align_key] = max(align_cost.get(r.align_key, 0.0), r.align_seconds)
    grid: dict[tuple, list[Run]] = {}
    for r in runs:
        r.align_seconds = align_cost[r.align_key]
        grid.setdefault(r.config, []).append(r)
    return names, grid


def summarise(grid: dict[tuple, list[Run]], epochs: int, sign: float):
    """Each config's final-epoch mean and 95% interval over seeds (full-length runs only), best first."""
    out = []
    for cfg, runs in grid.items():
        final = [r.values[-1] for r in runs if len(r.values) == epochs]
        if final:
            mean, half = t_interval(final)
            half = half if math.isfinite(half) else 0.0
            out.append((cfg, mean, mean - half, mean + half, len(final)))
    out.sort(key=lambda x: -sign * x[1])
    return out


class Asha:
    """Asynchronous successive halving over epochs: rungs at grace * RF^k below max_t."""

    def __init__(self, max_t: int, grace: int, sign: float):
        self.sign = sign
        n = int(math.log(max_t / grace) / math.log(RF)) + 1
        self.rungs = {grace * RF**k: [] for k in range(n) if grace * RF**k < max_t}

    def keep(self, epoch: int, value: float) -> bool:
        """At a rung, continue unless the value falls below the top 1/RF of the values recorded there before it
        (the first trial at a rung always continues); then record it."""
        if epoch not in self.rungs:
            return True
        seen = self.rungs[epoch]
        v = self.sign * value
        ok = not seen or v >= np.percentile(seen, (1 - 1 / RF) * 100)
        seen.append(v)
        return ok


def replay(names, grid, good: set, epochs: int, sign: float, sweep_seed: int, *, tpe: bool, asha: bool,
           concurrency: int = 2, grace: int = 1, max_trials: int = 200) -> float:
    """Trial-seconds until a trial with a good config finishes (inf if it never does within max_trials)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    configs = sorted(grid)
    choices = {n: sorted({c[i] for c in configs}, key=str) for i, n in enumerate(names)}
    sampler = (optuna.samplers.TPESampler(seed=sweep_seed, n_startup_trials=max(2, min(10, len(configs) // 2)))
               if tpe else optuna.samplers.RandomSampler(seed=sweep_seed))
    study = optuna.create_study(direction="maximize" if sign > 0 else "minimize", sampler=sampler)
    dists = {n: optuna.distributions.CategoricalDistribution(choices[n]) for n in names}
    rng = np.random.default_rng(sweep_seed)
    rule = Asha(epochs, grace, sign) if asha else None
    built: set = set()
    spent, started, clock = 0.0, 0, 0.0
    events: list = []  # (time an epoch ends, tiebreak, state)

    def start(now: float) -> None:
        nonlocal started
        for _ in range(1000):  # a grid recorded only in part: points it lacks are told FAIL and asked again
            trial = study.ask(dists)
            cfg = tuple(trial.params[n] for n in names)
            if cfg in grid:
                break
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            return
        run = grid[cfg][int(rng.integers(len(grid[cfg])))]
        first = run.seconds[0] + (run.align_seconds if run.align_key not in built else 0.0)
        built.add(run.align_key)
        started += 1
        heapq.heappush(events, (now + first, started, trial, run, 0, first))

    for _ in range(concurrency):
        start(clock)
    while events:
        clock, _, trial, run, e, cost = heapq.heappop(events)
        spent += cost
        value = run.values[e]
        trial.report(value, e + 1)
        last = e + 1 == len(run.values)
        stop = rule is not None and not last and not rule.keep(e + 1, value)
        if last or stop:
            study.tell(trial, value if last else None,
                       state=optuna.trial.TrialState.COMPLETE if last else optuna.trial.TrialState.PRUNED)
            if last and len(run.values) == epochs and run.config in good:
                # the other trial running now has spent its time up to this moment too
                return spent + sum(c - (t_end - clock) for t_end, _, _, _, _, c in events)
            if started < max_trials:
                start(clock)
        else:
            heapq.heappush(events, (clock + run.seconds[e + 1], started * 1000 + e, trial, run, e + 1,
                                    run.seconds[e + 1]))
    return float("inf")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sweep", type=Path, required=True, help="the recorded grid's sweep folder (W/sweeps/NAME)")
    ap.add_argument("--metric", help="the objective (default: the recorded space's first objective)")
    ap.add_argument("--mode", choices=("max", "min"), help="(default: the recorded space's)")
    ap.add_argument("--sweep-seeds", type=int, nargs="+", default=list(range(10)))
    ap.add_argument("--top", type=int, default=3, help="the stricter goal: one of the TOP best configs by mean")
    ap.add_argument("--out", type=Path, help="write replay.json here")
    args = ap.parse_args()
    ident = json.loads((args.sweep / "space.json").read_text())["objective"][0]
    args.metric, args.mode = args.metric or ident["metric"], args.mode or ident["mode"]
    sign = 1.0 if args.mode == "max" else -1.0
    names, grid = load_grid(args.sweep, args.metric)
    epochs = max(len(r.values) for runs in grid.values() for r in runs)
    grid = {c: full for c, runs in grid.items() if (full := [r for r in runs if len(r.values) == epochs])}
    table = summarise(grid, epochs, sign)
    best, worst = table[0], table[-1]
    signal = best[2] > worst[3] if sign > 0 else best[3] < worst[2]
    good = {c for c, m, lo, hi, n in table if best[2] <= m <= best[3]}
    total = sum(r.seconds[e] for runs in grid.values() for r in runs for e in range(len(r.values)))
    total += sum({r.align_key: r.align_seconds for runs in grid.values() for r in runs}.values())
    print(f"{len(grid)} configs, {sum(len(v) for v in grid.values())} runs, {epochs} epochs; factors {names}; "
          f"objective {args.metric} ({args.mode})")
    print(f"grid trial-seconds {total:.0f}; best {best[0]} {best[1]:.3f} [{best[2]:.3f}, {best[3]:.3f}]; "
          f"worst {worst[0]} {worst[1]:.3f} [{worst[2]:.3f}, {worst[3]:.3f}]; intervals disjoint: {signal}; "
          f"{len(good)} config(s) within the best's interval")
    results: dict[str, dict[str, list[float]]] = {}
    top = {c for c, *_ in table[: args.top]}
    for goal, targets in ((f"a config within the best's interval ({len(good)} of {len(table)})", good),
                          (f"one of the {args.top} best configs by mean (stricter)", top)):
        print(f"success = {goal}:")
        results[goal] = {}
        for label, tpe, asha in (("ASHA + TPE", True, True), ("TPE, no ASHA", True, False),
                                 ("random, no ASHA", False, False)):
            got = [replay(names, grid, targets, epochs, sign, s, tpe=tpe, asha=asha) / total
                   for s in args.sweep_seeds]
            results[goal][label] = got
            finite = [g for g in got if math.isfinite(g)]
            print(f"  {label:16s} median {np.median(got):.1%} of the grid's trial-seconds "
                  f"(range {min(finite, default=float('nan')):.1%}-{max(finite, default=float('nan')):.1%}; "
                  f"{len(got) - len(finite)} of {len(got)} never got there)")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "replay.json").write_text(json.dumps({
            "names": names, "total_trial_seconds": total, "signal": bool(signal),
            "table": [[list(map(str, c)), m, lo, hi, n] for c, m, lo, hi, n in table], "results": results},
            indent=1))


if __name__ == "__main__":
    main()
