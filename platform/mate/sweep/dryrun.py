"""What `mate sweep SPACE --dry-run` prints: the trials a space runs (its distributions or every grid trial) and
what they cost: CPU profiles as trials x a measured per-trial time, the GPU profile stage by stage
(`mate.sweep.cost`, whose step times are assumed until measured on a GPU)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from mate.config import resolve
from mate.sweep.space import Space
from mate.sweep.space.kinds import fmt

# wall seconds of one trial of a CPU profile on one thread, measured (BENCHMARKS.md), and where the figure comes from
TRIAL_COST = {
    "tiny": (10, "~10 s a trial on one CPU thread"),
    "smoke": (90, "~90 s a trial on one CPU thread"),
    "bench": (20 * 60, "~20 min a trial on one CPU thread, two at a time on 2 cores (alignment ~8, masked generator "
                       "~9, test scoring ~2; ~13 with its alignment cached)"),
}


def describe(space: Space, data: str | None = None) -> str:
    """The whole dry-run text. `data` is --data (the GPU stages read the trial config, which may require one)."""
    lines = [format_trials(space)]
    if space.profile in TRIAL_COST:
        lines.append(format_estimate(estimate(space)))
        return "\n".join(lines)
    from mate.sweep.cost import format_stages

    trials = space.num_trials + space.num_rerun_trials
    first = {} if space.is_search else space.trials()[0]
    cfg = space.trial_config(first, extra={"data.dir": data or "HumanML3D"})
    lines.append(format_stages(cfg, trials, space.budget.gpus_per_trial, space.budget.max_concurrent))
    return "\n".join(lines)


def estimate(space: Space) -> dict[str, Any]:
    """Trials and rough CPU-/GPU-hours of a CPU-profile space: `TRIAL_COST[profile]` scaled by budget.max_epochs over
    the profile's gen.epochs and by the trial's threads (ideal scaling). An upper bound when ASHA stops weak trials
    early."""
    if space.profile not in TRIAL_COST:
        raise ValueError(f"profile {space.profile}: a GPU profile is priced by stage (mate.sweep.cost.stages)")
    seconds, basis = TRIAL_COST[space.profile]
    b = space.budget
    per = seconds * space.max_epochs / resolve(profile=space.profile)["gen.epochs"] / b.cpus_per_trial
    notes = [basis]
    trials = space.num_trials
    rerun = space.num_rerun_trials
    total = (trials + rerun) * per
    search_wall = math.ceil(trials / min(b.max_concurrent, trials)) * per
    if b.time_budget_s:
        search_wall = min(search_wall, b.time_budget_s)
    wall = search_wall + (math.ceil(rerun / min(b.max_concurrent, rerun)) * per if rerun else 0)
    if space.scheduler == "asha":
        notes.append("an upper bound: ASHA stops weak trials early")
    return {"trials": trials, "rerun_trials": rerun, "per_trial_seconds": per, "total_seconds": total,
            "cpu_hours": total * b.cpus_per_trial / 3600, "gpu_hours": total * b.gpus_per_trial / 3600,
            "wall_hours": wall / 3600, "device": "gpu" if b.gpus_per_trial else "cpu",
            "max_concurrent": b.max_concurrent, "notes": notes}


def format_estimate(est: Mapping[str, Any]) -> str:
    runs = f"{est['trials']} trials" + (f" + {est['rerun_trials']} re-runs" if est["rerun_trials"] else "")
    hours = f"{est['gpu_hours']:.1f} GPU-hours, " if est["device"] == "gpu" else ""
    return (f"{runs} x ~{_duration(est['per_trial_seconds'])} = {hours}{est['cpu_hours']:.2f} CPU-hours; about "
            f"{_duration(est['wall_hours'] * 3600)} wall at {est['max_concurrent']} at a time "
            f"({'; '.join(est['notes'])})")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"



def format_trials(space: Space) -> str:
    """A readable summary: what runs, then the distributions (a search) or every trial (a grid)."""
    b = space.budget
    objective = ", ".join(f"{o.metric} ({o.mode})" for o in space.objectives)
    how = {"tpe": f"TPE (seed {space.base_seed}), {b.num_samples} trials",
           "nsga2": f"NSGA-II (seed {space.base_seed}), {b.num_samples} trials",
           "grid": f"{space.kind}: {len(space.points)} points x {len(space.seeds)} seeds = {space.num_trials} trials"}
    lines = [(f"{space.name} ({space.where}): profile {space.profile}, {how[space.algorithm]}, "
              f"{space.scheduler.upper()} over {space.max_epochs} epochs"),
             f"objective: {objective}",
             f"per trial: {b.cpus_per_trial} CPU, {fmt(b.gpus_per_trial)} GPU; {b.max_concurrent} at a time"
             + (f"; time budget {_duration(b.time_budget_s)}" if b.time_budget_s else "")]
    if space.constants:
        lines.append("constants: " + ", ".join(f"{k}={fmt(v)}" for k, v in space.constants.items()))
    if space.data_required:
        lines.append("needs --data DIR (a real dataset)")
    if space.is_search:
        rows = [(n, p.describe(), p.describe_when()) for n, p in space.params.items()]
        lines += ["", table(("parameter", "distribution", "when"), rows)]
        if space.rerun:
            lines.append(f"then the best {space.rerun.top} re-run over seeds {list(space.rerun.seeds)}")
    else:
        rows = [(str(i + 1), str(t["seed"]), label) for i, (t, label) in enumerate(zip(space.trials(),
                                                                                    space.labels()))]
        lines += ["", table(("#", "seed", "trial"), rows)]
    return "\n".join(lines)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
