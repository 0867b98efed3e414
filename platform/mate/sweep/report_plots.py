"""The figures of `mate report`: ablation curves with t-bands over seeds, parallel coordinates, objective histories
and the best trial's learning curves (matplotlib, imported inside each function)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .report_runs import Trial, better, fmt, is_numeric, log_scale, metric_history, number, sort_key

# what an ablation curve shows beside its objective, where the runs have them: the test figures the knobs move
EXTRA_CURVES = ("eval/r_precision_top3", "probe/word_pair_acc_comp")
MAX_SLICES = 6  # more combinations of the other factors than this: a factor's curve pools over them
MAX_LEARNING_CURVES = 12


# -- the pictures ------------------------------------------------------------------------------------------------------

def _figure(width: float, height: float):
    from matplotlib.figure import Figure  # no pyplot: no global state, no GUI backend

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


@dataclass
class Curve:
    """One factor's ablation: per slice (a combination of the other factors), per value: mean, half-width, n."""

    factor: str
    numeric: bool
    pooled: bool
    path: Path
    table: list[tuple[str, str, str, str, int]]  # slice, value, metric, "mean ± half", n


def _group_stats(values: list[float]) -> tuple[float, float, int]:
    from mate.evaluate.bootstrap import t_interval

    mean, half = t_interval(values)
    return mean, half, len(values)


def ablation_curve(trials: Sequence[Trial], factor: str, others: Sequence[str], metrics: Sequence[str],
                   path: Path, notes: Mapping[str, str] | None = None) -> Curve | None:
    """Objective (and the extra figures) against `factor`, one line per slice of the other factors (or pooled over
    them), mean over seeds with a t-based 95% band; a categorical factor as points with error bars. `notes`: a
    panel's title per metric (the knob test's verdict on that figure: the band is not the blocked test)."""
    usable = [t for t in trials if factor in t.params and not math.isnan(t.value(metrics[0]))]
    if not usable:
        return None
    levels = sorted({t.params[factor] for t in usable}, key=sort_key(is_numeric(t.params[factor] for t in usable)))
    numeric = is_numeric(levels)
    slices: dict[tuple, list[Trial]] = {}
    for t in usable:
        slices.setdefault(tuple(t.params.get(k) for k in others), []).append(t)
    spanning = {k: v for k, v in slices.items() if len({t.params[factor] for t in v}) > 1}
    pooled = not spanning or len(spanning) > MAX_SLICES
    groups = {(): usable} if pooled else spanning
    fig = _figure(max(6.0, 5.2 * len(metrics)), 4.0)
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    table: list[tuple[str, str, str, str, int]] = []
    xs_all = [number(v) for v in levels] if numeric else list(range(len(levels)))
    width = 0.5 / max(1, len(groups))
    for ax, metric in zip(axes, metrics):
        for gi, (key, members) in enumerate(sorted(groups.items(), key=lambda kv: str(kv[0]))):
            name = ", ".join(f"{k}={v}" for k, v in zip(others, key)) if key else ("all runs" if pooled else "")
            xs, means, halves, ns = [], [], [], []
            for li, level in enumerate(levels):
                vals = [t.value(metric) for t in members if t.params[factor] == level]
                vals = [v for v in vals if not math.isnan(v)]
                if not vals:
                    continue
                mean, half, n = _group_stats(vals)
                x = xs_all[li] if numeric else li + (gi - (len(groups) - 1) / 2) * width
                for store, item in ((xs, x), (means, mean), (halves, half), (ns, n)):
                    store.append(item)
                table.append((name, level, metric, f"{mean:.4g} ± {half:.2g}" if n > 1 else f"{mean:.4g}", n))
            if not xs:
                continue
            replicated = any(n > 1 for n in ns)
            if numeric:
                line = ax.plot(xs, means, "o-" if replicated else "o", label=name, markersize=5)[0]
                lo = [m - h if not math.isnan(h) else m for m, h in zip(means, halves)]
                hi = [m + h if not math.isnan(h) else m for m, h in zip(means, halves)]
                if replicated:
                    ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
            else:
                err = [h if not math.isnan(h) else 0.0 for h in halves]
                ax.errorbar(xs, means, yerr=err if replicated else None, fmt="o", capsize=4, label=name)
            # the single runs behind the means, faintly
            raw_x, raw_y = [], []
            for t in members:
                v = t.value(metric)
                if math.isnan(v):
                    continue
                li = levels.index(t.params[factor])
                raw_x.append(xs_all[li] if numeric else li + (gi - (len(groups) - 1) / 2) * width)
                raw_y.append(v)
            if replicated:
                ax.scatter(raw_x, raw_y, s=9, color="grey", alpha=0.5, zorder=0)
        if numeric:
            if log_scale([x for x in xs_all if x is not None]):
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(levels)), [str(v) for v in levels], rotation=30 if len(levels) > 4 else 0)
            ax.set_xlim(-0.5, len(levels) - 0.5)
        ax.set_xlabel(factor)
        ax.set_ylabel(metric)
        if notes and notes.get(metric):
            ax.set_title(notes[metric], fontsize=9)
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    title = f"{factor}: mean over seeds, t-based 95% band"
    title += "; above each panel, the test with seed blocks" if notes else ""
    if pooled and others:
        title += "\n(pooled over the other factors)"
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    return Curve(factor, numeric, pooled and bool(others), path, table)


def importance_bars(items, path: Path) -> bool:
    """Optuna's fANOVA importance per param (variance share) beside what shuffled objectives get (95th pct)."""
    if not items:
        return False
    objectives = list(dict.fromkeys(i.objective for i in items))
    fig = _figure(5.5 * len(objectives), 0.5 + 0.45 * max(len([i for i in items if i.objective == o])
                                                              for o in objectives) + 1.0)
    axes = fig.subplots(1, len(objectives), squeeze=False)[0]
    for ax, objective in zip(axes, objectives):
        mine = sorted((i for i in items if i.objective == objective), key=lambda i: i.raw)
        ys = range(len(mine))
        ax.barh(ys, [i.raw for i in mine], color=["tab:blue" if i.p < 0.05 else "tab:gray" for i in mine])
        ax.scatter([i.null95 for i in mine], ys, marker="|", s=300, color="tab:red", zorder=3,
                   label="shuffled objectives, 95th pct")
        ax.set_yticks(list(ys), [f"{i.param} (p={i.p:.2f})" for i in mine])
        ax.set_xlabel("share of variance (fANOVA, unnormalised)")
        ax.set_title(objective, fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        ax.grid(alpha=0.3, axis="x")
    fig.suptitle("parameter importance: blue = beyond what shuffled objectives get", fontsize=10)
    fig.savefig(path)
    return True


def parallel_coordinates(trials: Sequence[Trial], factors: Sequence[str], objective: str, path: Path) -> int:
    """Varied params and the objective as normalised vertical axes; one line per run, coloured by the objective.
    Returns how many runs it drew (runs without the objective are left out)."""
    import matplotlib
    import numpy as np
    from matplotlib import cm, colors

    runs = [t for t in trials if not math.isnan(t.value(objective)) and all(k in t.params for k in factors)]
    if not runs:
        return 0
    axes_names = [*factors, objective]
    columns, ticks = [], []
    for name in factors:
        vals = [t.params.get(name) for t in runs]
        if is_numeric(vals):
            nums = np.array([number(v) for v in vals])
            log = log_scale(list(nums))
            scaled = np.log10(nums) if log else nums
            lo, hi = float(scaled.min()), float(scaled.max())
            norm = (scaled - lo) / (hi - lo) if hi > lo else np.full_like(scaled, 0.5)
            levels = sorted(set(nums))
            marks = levels if len(levels) <= 8 else [min(levels), max(levels)]
            pos = [((math.log10(v) if log else v) - lo) / (hi - lo) if hi > lo else 0.5 for v in marks]
            ticks.append(list(zip(pos, [fmt(float(v)) for v in marks])))
        else:
            levels = sorted({str(v) for v in vals})
            pos_of = {v: (i / (len(levels) - 1) if len(levels) > 1 else 0.5) for i, v in enumerate(levels)}
            norm = np.array([pos_of[str(v)] for v in vals])
            step = max(1, math.ceil(len(levels) / 12))  # label at most ~12 levels
            ticks.append([(pos_of[v], v[:24]) for v in levels[::step]])
        columns.append(norm)
    obj = np.array([t.value(objective) for t in runs])
    lo, hi = float(obj.min()), float(obj.max())
    columns.append((obj - lo) / (hi - lo) if hi > lo else np.full_like(obj, 0.5))
    ticks.append([(0.0, fmt(lo)), (1.0, fmt(hi))] if hi > lo else [(0.5, fmt(lo))])
    data = np.stack(columns, axis=1)
    fig = _figure(max(5.0, 1.9 * len(axes_names) + 1.5), 4.2)
    ax = fig.subplots()
    cmap = matplotlib.colormaps["viridis"]
    cnorm = colors.Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1e-12)
    xs = np.arange(len(axes_names))
    order = np.argsort(obj if better(objective) == "max" else -obj)  # the best drawn last, on top
    for i in order:
        if runs[i].status == "FINISHED":
            ax.plot(xs, data[i], color=cmap(cnorm(obj[i])), alpha=0.85, linewidth=1.6)
        else:  # a failed or killed run's objective is from the epoch it reached: not coloured as a result
            ax.plot(xs, data[i], color="grey", alpha=0.6, linewidth=1.0, linestyle="--")
    for x, marks in zip(xs, ticks):
        ax.axvline(x, color="black", linewidth=0.8)
        for y, text in marks:
            ax.text(x + 0.03, y, text, fontsize=7, va="center", ha="left",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
    ax.set_xticks(xs, axes_names, rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.2, len(axes_names) - 0.6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    sm = cm.ScalarMappable(norm=cnorm, cmap=cmap)
    fig.colorbar(sm, ax=ax, label=objective, fraction=0.04)
    others = sum(t.status != "FINISHED" for t in runs)
    note = f"; {others} not FINISHED, grey dashed" if others else ""
    fig.suptitle(f"parallel coordinates ({len(runs)} runs, axes normalised{note})", fontsize=10)
    fig.savefig(path)
    return len(runs)


def _epoch_axis(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def objective_histories(client, trials: Sequence[Trial], objective: str, best: Trial | None, path: Path) -> bool:
    """The objective per generator epoch for every trial (stopped-early and failed runs in their own colours)."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    drawn = False
    styles = {"ok": ("tab:blue", "finished"), "early": ("tab:orange", "stopped early"),
              "bad": ("tab:red", "failed/killed")}
    seen = set()
    for t in trials:
        points = metric_history(client, t.run_id, objective)
        if not points:
            continue
        kind = "bad" if t.status in ("FAILED", "KILLED") else ("early" if t.stopped_early else "ok")
        color, label = styles[kind]
        steps, values = zip(*points)
        is_best = best is not None and t.run_id == best.run_id
        ax.plot(steps, values, "-" if len(steps) > 1 else "o", color="black" if is_best else color,
                linewidth=2.4 if is_best else 1.0, alpha=1 if is_best else 0.6,
                label=f"best ({t.label})" if is_best else (label if kind not in seen else None))
        seen.add(kind)
        drawn = True
    if not drawn:
        return False
    ax.set_xlabel("gen/epoch")
    _epoch_axis(ax)
    ax.set_ylabel(objective)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle("objective per generator epoch, every trial", fontsize=10)
    fig.savefig(path)
    return True


def learning_curves(client, trial: Trial, objective: str, path: Path) -> list[str]:
    """The best trial's per-epoch val metrics (and gen/loss) as one PNG of small panels; returns the metrics drawn."""
    keys = sorted(k for k in trial.metrics if k.startswith("val/") and not k.endswith("_ci95"))
    keys = ([objective] if objective in keys else []) + [k for k in keys if k != objective]
    if "gen/loss" in trial.metrics:
        keys.append("gen/loss")
    series = [(k, metric_history(client, trial.run_id, k)) for k in keys]
    curves = [(k, p) for k, p in series if len(p) > 1]  # align metrics ride on the first epoch only: one point
    series = (curves or [(k, p) for k, p in series if p])[:MAX_LEARNING_CURVES]
    if not series:
        return []
    cols = min(3, len(series))
    rows = math.ceil(len(series) / cols)
    fig = _figure(3.6 * cols, 2.6 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, (k, points) in zip(axes, series):
        steps, values = zip(*points)
        ax.plot(steps, values, "o-", markersize=3, color="black" if k == objective else "tab:blue")
        ax.set_title(k, fontsize=8)
        _epoch_axis(ax)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(series):]:
        ax.set_visible(False)
    fig.suptitle(f"trial {trial.label}: val metrics per generator epoch", fontsize=10)
    fig.savefig(path)
    return [k for k, _ in series]
