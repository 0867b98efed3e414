"""Replicates of a search's best configs (`rerun: {top, seeds}` in a space): after the search, its `top` trials by
the first objective (those that ran to the end first) run again once per replicate seed, as child runs of the same
MLflow parent tagged `mate.rerun_of`, so the report can put a mean and a t-interval over seeds beside each single
search run. A search trial's value is one seed's draw; a replicate mean is what a choice between configs needs."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

RERUN_KEY = "rerun_of"  # inside a replicate's Tune config["trial"]: the search trial it repeats
RERUN_TAG = "mate.rerun_of"
FOLDER = "rerun"  # the replicates' Tune run, beside the search's run-<k> folders


def top_trials(rows: Sequence[dict], metric: str, mode: str, top: int) -> list[dict]:
    """The best `top` finished search rows (`mate.sweep.report.collect`) by their last `metric`; trials that ran to
    the end rank before those a scheduler stopped early (an early value is an earlier epoch's)."""
    sign = 1.0 if mode == "max" else -1.0
    done = [r for r in rows if not r.get(RERUN_KEY) and r["status"] == "finished"
            and math.isfinite(r["last"].get(metric, math.nan))]
    full = max((int(r["last"].get("gen/epoch", 0)) for r in done), default=0)
    done.sort(key=lambda r: (int(r["last"].get("gen/epoch", 0)) < full, -sign * r["last"][metric]))
    return done[:top]


def replicate_points(rows: Sequence[dict], metric: str, mode: str, top: int, seeds: Sequence[int]) -> list[dict]:
    """Tune `trial` configs of the replicates: each top trial's sampled keys with each replicate seed."""
    out = []
    for r in top_trials(rows, metric, mode, top):
        params = {k: v for k, v in r["params"].items() if k != "seed"}
        out += [{**params, "seed": int(s), RERUN_KEY: r["trial"]} for s in seeds]
    return out


def strip(trial: Mapping[str, Any]) -> dict[str, Any]:
    """A Tune trial config's own keys without the replicate marker."""
    return {k: v for k, v in trial.items() if k != RERUN_KEY}


def run_replicates(space, opts, store, tune_rel: str, trainable, run_config: dict, sweep_dir: Path,
                   log: Callable[[str], None]) -> None:
    """`rerun`: the search's best configs once per replicate seed (`mate.sweep.rerun`), a Tune run of its own that
    resumes like the search's; the search's objective chooses them, the replicates never feed the study."""
    from ray import tune

    from mate.sweep.driver import EXPECTED, FINISHED, LIMITS, fit_run, run_limits, say_kept_limits
    from mate.sweep.report import collect

    rel = f"{tune_rel}/{FOLDER}"
    if store.exists(f"{rel}/{FINISHED}"):
        return
    if store.is_file(f"{rel}/{EXPECTED}") and tune.Tuner.can_restore(store.url(rel)):
        log(f"sweep: restoring the replicates ({store.url(rel)})")
        tuner = tune.Tuner.restore(store.url(rel), trainable, resume_unfinished=True, resume_errored=opts.retry_failed)
        expected = int(store.read_text(f"{rel}/{EXPECTED}"))
        say_kept_limits(store, rel, run_limits(space, opts, timed=False), log)
    else:
        points = replicate_points(collect(sweep_dir), space.metrics[0], space.modes[0], space.rerun.top,
                                  space.rerun.seeds)
        if not points:
            log("sweep: no finished trial to re-run")
            return
        tops = list(dict.fromkeys(p["rerun_of"] for p in points))
        log(f"sweep: re-running the best {len(tops)} ({', '.join(tops)}) over seeds {list(space.rerun.seeds)}")
        limits = run_limits(space, opts, timed=False)
        tuner = tune.Tuner(trainable, param_space={"trial": tune.grid_search(points)},
                           tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=limits["max_concurrent"],
                                                       reuse_actors=True),
                           run_config=tune.RunConfig(name=FOLDER, **run_config))
        expected = len(points)
        store.write_text(f"{rel}/{EXPECTED}", str(expected))
        store.write_text(f"{rel}/{LIMITS}", json.dumps(limits))
    fit_run(tuner, expected, space, store, rel, log)
