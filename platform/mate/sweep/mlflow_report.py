"""`mate report EXPERIMENT`: a sweep's report built only from the MLflow store (DESIGN 5).

It reads what the sweep's Tune callback wrote (one experiment per sweep, a parent run tagged `mate.role=parent`, one
child run per trial with tag `mlflow.parentRunId`, params = the trial's flat config, metrics per generator epoch,
artifacts per child, `best.yaml` on the parent), so it works for any past sweep on a local SQLite store or a server,
without the sweep's folder. It writes into `--out` (default `<workspace>/reports/<experiment>/`):

- `report.md` and `report.html` (the HTML references the images beside it);
- `img/`: ablation curves per varied factor (mean over seeds with a t-based 95% band), a parallel-coordinates plot,
  the objective's history for every trial and the best trial's learning curves;
- `best/`: the best trial's `plots/*.png` and `previews/*.gif`, downloaded from its artifacts;

and logs all of it to the parent run under `report/`.

The trial table shows, per child run: status (stopped-early flag), the params that vary across runs, the objective's
last value, the test figures as `x ± ci` (`<name>_ci95`: the interval over evaluation repetitions), cost and, for
failed runs, the error line. The curves pool seeds with Student-t intervals (`t_interval`), which is a different
interval from `_ci95` (DESIGN 4).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import html
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mate.errors import UserError

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
DEFAULT_OBJECTIVE = "val/probe/word_pair_acc"
SEED_KEY = "seed"
SECOND_CURVE = "eval/r_precision_top3"
FALLBACK_OBJECTIVES = ("val/eval/r_precision_top3", "val/probe/word_pair_acc_comp", "val/eval/fid")
# test figures shown in the table, in this order, when any run has them (`<name>_ci95` gives the ± when logged)
TEST_METRICS = ("eval/fid", "eval/r_precision_top1", "eval/r_precision_top3", "eval/mm_dist", "eval/diversity",
                "probe/word_pair_acc", "probe/word_pair_acc_comp", "align/attn_in_span")
COST_METRIC = "cost/trial_seconds"
_LOWER_IS_BETTER = ("fid", "mm_dist", "foot_skate", "jitter", "loss", "seconds", "false_neg_rate")
MAX_SLICES = 6  # more combinations of the other factors than this: a factor's curve pools over them
MAX_LEARNING_CURVES = 12
MAX_DOWNLOADS = 60  # best trial's plots/previews files at most


# -- the store ---------------------------------------------------------------------------------------------------------

@dataclass
class Trial:
    """One child run: what the report needs of it."""

    run_id: str
    name: str
    trial_id: str
    status: str
    stopped_early: bool
    error: str
    start_time: int
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.trial_id or self.name or self.run_id[:8]

    @property
    def status_text(self) -> str:
        return f"{self.status} (stopped early)" if self.stopped_early else self.status

    def value(self, metric: str) -> float:
        v = self.metrics.get(metric)
        return float(v) if v is not None and math.isfinite(v) else math.nan


def _open_store(uri: str, workspace: str | Path | None):
    from mate.tracking import Tracker, sqlite_path

    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise UserError(f"no MLflow store at {db} (tracking URI {uri}): run a sweep first, or pass --tracking-uri "
                        f"or --workspace for the store that holds it")
    return Tracker(uri, workspace)


def _experiment(client, name: str, uri: str):
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        names = sorted(e.name for e in client.search_experiments(max_results=1000) if e.name != "Default")
        there = ", ".join(names) if names else "none"
        what = "is deleted" if found is not None else "does not exist"
        raise UserError(f"MLflow experiment {name!r} {what} in {uri}; experiments there (one per sweep): {there}")
    return found


def _all_runs(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token,
                                  order_by=["attributes.start_time ASC", "attributes.run_id ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _split(runs: list, experiment: str) -> tuple[Any, list]:
    """The sweep's parent run (None when there is none) and its child runs."""
    parents = [r for r in runs if r.data.tags.get("mate.role") == "parent"]
    named = [r for r in parents if r.data.tags.get("sweep") == experiment]
    parent = (named or parents or [None])[0]
    if parent is not None:
        ids = {p.info.run_id for p in parents}
        children = [r for r in runs if r.data.tags.get(PARENT_TAG) in ids and r.info.run_id not in ids]
    else:
        children = [r for r in runs if "trial_id" in r.data.tags and r.data.tags.get("mate.role") != "parent"]
    return parent, children


def _trial(run) -> Trial:
    tags = run.data.tags
    return Trial(run_id=run.info.run_id, name=run.info.run_name or "", trial_id=tags.get("trial_id", ""),
                 status=run.info.status, stopped_early=tags.get("mate.stopped_early", "").lower() == "true",
                 error=tags.get("mate.error", ""), start_time=int(run.info.start_time or 0),
                 params=dict(run.data.params), metrics={k: float(v) for k, v in run.data.metrics.items()})


@contextlib.contextmanager
def _quiet_downloads():
    """No tqdm bar per downloaded artifact (MLflow's default) while the report downloads a few small files."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    old = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def _store_errors() -> tuple[type[BaseException], ...]:
    """What reading one artifact or metric history may raise without the report giving up (it shows less)."""
    from mlflow.exceptions import MlflowException

    return MlflowException, OSError


def _artifact_names(client, run_id: str, path: str | None = None) -> list:
    try:
        return list(client.list_artifacts(run_id, path))
    except _store_errors() as exc:  # an unreachable artifact store: nothing to show
        log.warning("run %s: cannot list artifacts under %s: %s", run_id, path or "/", exc)
        return []


def _best_yaml(client, parent_id: str, tmp: Path) -> dict[str, Any] | None:
    import yaml

    if not any(f.path == "best.yaml" for f in _artifact_names(client, parent_id)):
        return None
    try:
        path = client.download_artifacts(parent_id, "best.yaml", str(tmp))
        doc = yaml.safe_load(Path(path).read_text())
    except (*_store_errors(), yaml.YAMLError) as exc:
        log.warning("parent run %s: unreadable best.yaml (%s): using the default objective", parent_id, exc)
        return None
    return doc if isinstance(doc, dict) else None


def _download_tree(client, run_id: str, folder: str, dst: Path, suffixes: tuple[str, ...], limit: int) -> list[Path]:
    """The run's artifact files under `folder` (recursively) that end with `suffixes`, downloaded into `dst`."""
    out: list[Path] = []
    todo = [folder]
    while todo and len(out) < limit:
        for info in sorted(_artifact_names(client, run_id, todo.pop(0)), key=lambda f: f.path):
            if info.is_dir:
                todo.append(info.path)
            elif info.path.lower().endswith(suffixes) and len(out) < limit:
                target = dst / info.path
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    got = Path(client.download_artifacts(run_id, info.path, str(target.parent)))
                except _store_errors() as exc:
                    log.warning("run %s: cannot download %s: %s", run_id, info.path, exc)
                    continue
                out.append(got)
    return out


# -- what varies, what is better ---------------------------------------------------------------------------------------

def better(metric: str) -> str:
    """"min" for figures where lower is better (FID, MM distance, jitter, losses, seconds), "max" otherwise."""
    leaf = metric.rsplit("/", 1)[-1]
    return "min" if any(leaf == k or leaf.endswith(k) for k in _LOWER_IS_BETTER) else "max"


def varied_params(trials: Sequence[Trial]) -> list[str]:
    """The param keys whose value differs between the runs that logged params (a key some lack counts as varied)."""
    logged = [t for t in trials if t.params]
    keys = sorted({k for t in logged for k in t.params})
    return [k for k in keys if len({t.params.get(k) for t in logged}) > 1]


def _number(text: str | None) -> float | None:
    if text is None or text.strip().lower() in ("true", "false", "none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def is_numeric(values: Iterable[str | None]) -> bool:
    values = list(values)
    return bool(values) and all(_number(v) is not None and math.isfinite(_number(v)) for v in values)


def _sort_key(numeric: bool):
    return (lambda v: _number(v)) if numeric else (lambda v: (v is None, str(v)))


def _log_scale(values: Sequence[float]) -> bool:
    return len(values) > 2 and min(values) > 0 and max(values) / min(values) >= 10


def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def _with_ci(trial: Trial, metric: str) -> str:
    v = trial.value(metric)
    if math.isnan(v):
        return ""
    ci = trial.value(f"{metric}_ci95")
    return f"{v:.4g} ± {ci:.2g}" if not math.isnan(ci) else f"{v:.4g}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "x"


# -- the table ---------------------------------------------------------------------------------------------------------

def trial_table(trials: Sequence[Trial], columns: Sequence[str], objective: str, best: Trial | None
                ) -> tuple[list[str], list[list[str]]]:
    """Header and rows (strings) of the trial table: one row per child run."""
    tests = [m for m in TEST_METRICS if any(m in t.metrics for t in trials)]
    cost = [COST_METRIC] if any(COST_METRIC in t.metrics for t in trials) else []
    errors = any(t.error for t in trials)
    head = ["trial", "status", *columns, objective, *tests, *(["cost s"] if cost else []), *(["error"] if errors else [])]
    rows = []
    for t in trials:
        mark = " ★" if best is not None and t.run_id == best.run_id else ""
        row = [t.label + mark, t.status_text, *[t.params.get(k, "") for k in columns], _fmt(t.value(objective)),
               *[_with_ci(t, m) for m in tests]]
        if cost:
            row.append(_fmt(round(t.value(COST_METRIC), 1)) if COST_METRIC in t.metrics else "")
        if errors:
            row.append(t.error.splitlines()[0][:300] if t.error else "")
        rows.append(row)
    return head, rows


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(_md_cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(head: Sequence[str], rows: Sequence[Sequence[str]], row_class: Sequence[str] | None = None,
                cell_class: dict[int, str] | None = None) -> str:
    cell_class = cell_class or {}
    out = ["<table>", "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead>", "<tbody>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class and row_class[i] else ""
        tds = "".join((f'<td class="{cell_class[j]}">' if j in cell_class else "<td>") + html.escape(str(c)) + "</td>"
                      for j, c in enumerate(row))
        out.append(f"<tr{cls}>{tds}</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


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
                   path: Path) -> Curve | None:
    """Objective (and the second metric) against `factor`, one line per slice of the other factors (or pooled over
    them), mean over seeds with a t-based 95% band; a categorical factor as points with error bars."""
    usable = [t for t in trials if factor in t.params and not math.isnan(t.value(metrics[0]))]
    if not usable:
        return None
    levels = sorted({t.params[factor] for t in usable}, key=_sort_key(is_numeric(t.params[factor] for t in usable)))
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
    xs_all = [_number(v) for v in levels] if numeric else list(range(len(levels)))
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
            if _log_scale([x for x in xs_all if x is not None]):
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(levels)), [str(v) for v in levels], rotation=30 if len(levels) > 4 else 0)
            ax.set_xlim(-0.5, len(levels) - 0.5)
        ax.set_xlabel(factor)
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=7)
    title = f"{factor}: mean over seeds, t-based 95% band"
    if pooled and others:
        title += "\n(pooled over the other factors)"
    fig.suptitle(title, fontsize=10)
    fig.savefig(path)
    return Curve(factor, numeric, pooled and bool(others), path, table)


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
            nums = np.array([_number(v) for v in vals])
            log = _log_scale(list(nums))
            scaled = np.log10(nums) if log else nums
            lo, hi = float(scaled.min()), float(scaled.max())
            norm = (scaled - lo) / (hi - lo) if hi > lo else np.full_like(scaled, 0.5)
            levels = sorted(set(nums))
            marks = levels if len(levels) <= 8 else [min(levels), max(levels)]
            pos = [((math.log10(v) if log else v) - lo) / (hi - lo) if hi > lo else 0.5 for v in marks]
            ticks.append(list(zip(pos, [_fmt(float(v)) for v in marks])))
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
    ticks.append([(0.0, _fmt(lo)), (1.0, _fmt(hi))] if hi > lo else [(0.5, _fmt(lo))])
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


def _history(client, run_id: str, key: str) -> list[tuple[int, float]]:
    try:
        points = client.get_metric_history(run_id, key)
    except _store_errors() as exc:
        log.warning("run %s: cannot read the history of %s: %s", run_id, key, exc)
        return []
    last: dict[int, tuple[int, float]] = {}
    for m in points:  # a resumed trial may log a step twice: keep the latest
        if m.step not in last or m.timestamp >= last[m.step][0]:
            last[m.step] = (m.timestamp, m.value)
    return [(s, v) for s, (_, v) in sorted(last.items()) if math.isfinite(v)]


def objective_histories(client, trials: Sequence[Trial], objective: str, best: Trial | None, path: Path) -> bool:
    """The objective per generator epoch for every trial (stopped-early and failed runs in their own colours)."""
    fig = _figure(6.5, 4.0)
    ax = fig.subplots()
    drawn = False
    styles = {"ok": ("tab:blue", "finished"), "early": ("tab:orange", "stopped early"),
              "bad": ("tab:red", "failed/killed")}
    seen = set()
    for t in trials:
        points = _history(client, t.run_id, objective)
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
    series = [(k, _history(client, trial.run_id, k)) for k in keys]
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


# -- the report --------------------------------------------------------------------------------------------------------

def _pick_best(trials: Sequence[Trial], best_doc: dict | None, objective: str, mode: str) -> tuple[Trial | None, str]:
    if best_doc and best_doc.get("trial") is not None:
        tid = str(best_doc["trial"])
        for t in trials:
            if t.trial_id == tid:
                return t, "best.yaml on the parent run"
    sign = 1 if mode == "max" else -1
    finished = [t for t in trials if t.status == "FINISHED" and not math.isnan(t.value(objective))]
    full = [t for t in finished if not t.stopped_early] or finished
    if not full:
        return None, ""
    return max(full, key=lambda t: sign * t.value(objective)), f"the best {objective} ({mode}) among FINISHED runs"


def _flat_config(doc: Any) -> dict[str, str]:
    from mate.tracking import flatten, param_value

    if not isinstance(doc, dict):
        return {}
    return {k: param_value(v) for k, v in flatten(doc).items()}


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:1.5em auto;max-width:1400px;
 padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}
th{background:#f3f3f3;position:sticky;top:0}
tr.best td{background:#fff7d6;font-weight:600}tr.failed td{background:#fdecec}tr.early td{color:#8a6d00}
td.err{color:#b00;font-family:monospace;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}
.gallery{display:flex;flex-wrap:wrap;gap:.8em}.gallery figure{margin:0;max-width:48%}
figcaption{font-size:.8em;color:#555}mark{background:#fff1a8}.meta{color:#555;font-size:.9em}
code{background:#f5f5f5;padding:0 .2em}
"""


@dataclass
class _Content:
    """Everything the two renderings (Markdown, HTML) show."""

    experiment: str
    header: str  # store, experiment, parent, counts, date
    objective: str
    mode: str
    objective_source: str
    head: list[str]
    rows: list[list[str]]
    row_class: list[str]
    factors: list[str]
    varied: list[str]
    curves: list[Curve]
    images: dict[str, str]  # section -> image path relative to the report (parallel, history, learning)
    best: Trial | None
    best_why: str
    best_command: str
    config: dict[str, str]
    best_files: list[str]


def _choose_objective(trials: Sequence[Trial], best_doc: dict | None) -> tuple[str, str, str]:
    """(metric, mode, where it came from): best.yaml's, else the default, else the first val/* metric logged."""
    if best_doc and best_doc.get("metric"):
        metric = str(best_doc["metric"])
        return metric, str(best_doc.get("mode") or better(metric)), "from best.yaml on the parent run"
    logged = sorted({k for t in trials for k in t.metrics if k.startswith("val/") and not k.endswith("_ci95")})
    if DEFAULT_OBJECTIVE in logged or not logged:
        return DEFAULT_OBJECTIVE, better(DEFAULT_OBJECTIVE), "no best.yaml on the parent run: the default objective"
    metric = next((m for m in FALLBACK_OBJECTIVES if m in logged), logged[0])
    return metric, better(metric), f"no best.yaml on the parent run and no {DEFAULT_OBJECTIVE} logged"


def build_report(uri: str, experiment: str, out: str | Path | None = None, workspace: str | Path | None = None, *,
                 log_to_parent: bool = True, log=print) -> Path:
    """Write `report.md`, `report.html` and their images for sweep `experiment` into `out` (default
    `<workspace>/reports/<experiment>/`), from the MLflow store at `uri` only; log them to the sweep's parent run
    under `report/`. Returns the HTML path. An unknown experiment, or one without trial runs, is a `UserError`."""
    with _quiet_downloads():
        return _build(uri, experiment, out, workspace, log_to_parent, log)


def _build(uri: str, experiment: str, out: str | Path | None, workspace: str | Path | None, log_to_parent: bool,
           log) -> Path:
    from mate.tracking import _folder_name, sqlite_path

    tracker = _open_store(uri, workspace)
    client = tracker.client
    exp = _experiment(client, experiment, uri)
    runs = _all_runs(client, exp.experiment_id)
    parent, children = _split(runs, experiment)
    if not children:
        names = ", ".join(f"{r.info.run_name or r.info.run_id[:8]} ({r.info.status})" for r in runs[:20])
        more = f", … ({len(runs)} in all)" if len(runs) > 20 else ""
        raise UserError(f"MLflow experiment {experiment!r} in {uri} has no trial runs (child runs of a sweep's parent "
                        f"run); it holds {len(runs)} run(s){': ' + names + more if runs else ''}")
    if out is None:
        db = sqlite_path(uri)
        ws = Path(workspace) if workspace is not None else (db.parent if db is not None else Path("."))
        out = ws / "reports" / _folder_name(experiment)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for owned in ("img", "best"):  # what an earlier report left there (this report owns these folders)
        shutil.rmtree(out / owned, ignore_errors=True)
    img = out / "img"
    img.mkdir()

    def rel(path: Path) -> str:
        return path.relative_to(out).as_posix()

    trials = [_trial(r) for r in children]

    with tempfile.TemporaryDirectory() as tmp:
        best_doc = _best_yaml(client, parent.info.run_id, Path(tmp)) if parent is not None else None
    objective, mode, source = _choose_objective(trials, best_doc)
    best, best_why = _pick_best(trials, best_doc, objective, mode)
    varied = varied_params(trials)
    factors = [k for k in varied if k != SEED_KEY]
    columns = ([SEED_KEY] if any(SEED_KEY in t.params for t in trials) else []) + factors

    # 1. the table
    head, rows = trial_table(trials, columns, objective, best)
    row_class = ["best" if best is not None and t.run_id == best.run_id else
                 "failed" if t.status in ("FAILED", "KILLED") else "early" if t.stopped_early else "" for t in trials]

    # 2. ablation curves over the FINISHED runs that ran to the end (a stopped-early one stopped at another epoch)
    curve_runs = [t for t in trials if t.status == "FINISHED" and not t.stopped_early] or \
        [t for t in trials if t.status == "FINISHED"]
    metrics = [objective] + ([SECOND_CURVE] if SECOND_CURVE != objective and any(
        SECOND_CURVE in t.metrics for t in curve_runs) else [])
    curves = [c for c in (ablation_curve(curve_runs, f, [k for k in factors if k != f], metrics,
                                         img / f"ablation_{_safe(f)}.png") for f in factors) if c is not None]

    # 3. parallel coordinates, and the objective per epoch of every trial
    images: dict[str, str] = {}
    if factors and parallel_coordinates(trials, factors, objective, img / "parallel_coordinates.png"):
        images["parallel"] = rel(img / "parallel_coordinates.png")
    if objective_histories(client, trials, objective, best, img / "objective_per_epoch.png"):
        images["history"] = rel(img / "objective_per_epoch.png")

    # 4. the best trial
    best_files: list[Path] = []
    config: dict[str, str] = {}
    if best is not None:
        if best_doc and best_why.startswith("best.yaml"):
            config = _flat_config(best_doc.get("config"))
        config = config or dict(best.params)
        if learning_curves(client, best, objective, img / "best_learning_curves.png"):
            images["learning"] = rel(img / "best_learning_curves.png")
        for folder, suffixes in (("plots", (".png",)), ("previews", (".gif",))):
            best_files += _download_tree(client, best.run_id, folder, out / "best", suffixes,
                                         MAX_DOWNLOADS - len(best_files))

    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status_text] = counts.get(t.status_text, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parent_text = f"{parent.info.run_name} ({parent.info.run_id})" if parent is not None else "none"
    content = _Content(
        experiment=experiment,
        header=f"Store {uri}, experiment id {exp.experiment_id}, parent run {parent_text}; {len(trials)} trials: "
               f"{summary}. Generated {when} from MLflow only.",
        objective=objective, mode=mode, objective_source=source, head=head, rows=rows, row_class=row_class,
        factors=factors, varied=varied, curves=curves, images=images, best=best, best_why=best_why,
        best_command=str((best_doc or {}).get("command") or "") if best_why.startswith("best.yaml") else "",
        config=config, best_files=[rel(p) for p in best_files])
    for c in curves:
        c.path = Path(rel(c.path))
    (out / "report.md").write_text(_render_md(content))
    report = out / "report.html"
    report.write_text(_render_html(content))

    # 5. onto the parent run
    if log_to_parent and parent is not None:
        for name in ("report.md", "report.html"):
            tracker.log_artifact(parent.info.run_id, out / name, "report")
        for owned in ("img", "best"):
            if (out / owned).is_dir() and any((out / owned).iterdir()):
                tracker.log_artifacts(parent.info.run_id, out / owned, f"report/{owned}")
        log(f"report logged to parent run {parent.info.run_id} under report/")
    elif log_to_parent:
        log("no parent run (mate.role=parent) in this experiment: the report is not logged to MLflow")
    log(f"wrote {report} and {out / 'report.md'}")
    return report


def _config_rows(c: _Content) -> list[tuple[str, str, bool]]:
    return [(k, v, k in c.varied) for k, v in sorted(c.config.items(), key=lambda kv: (kv[0] not in c.varied, kv[0]))]


def _curve_rows(curve: Curve) -> tuple[list[str], list[list[str]]]:
    return (["slice", curve.factor, "metric", "mean ± t95", "n"],
            [[s or "-", v, m, txt, str(n)] for s, v, m, txt, n in curve.table])


_NOTHING_VARIES = "No param varies across the runs except the seed: nothing to plot."
_NO_PARALLEL = "Not enough to draw (no varied param or no run with the objective)."
_INTERVALS = ("Test figures are `value ± ci95` (the interval over evaluation repetitions); the ablation means pool "
              "seeds with a Student-t 95% interval.")


def _render_md(c: _Content) -> str:
    md = [f"# Sweep report: {c.experiment}", "", c.header, "",
          f"Objective: `{c.objective}` ({c.mode}), its last logged value; {c.objective_source}. {_INTERVALS}", "",
          "## Trials", "", _md_table(c.head, c.rows), ""]
    if c.best is not None:
        md += [f"★ best trial: {c.best.label} ({c.best_why}).", ""]
    md += ["## Ablation curves", ""]
    if not c.factors:
        md += [_NOTHING_VARIES, ""]
    elif not c.curves:
        md += [f"No FINISHED run has `{c.objective}`: nothing to plot.", ""]
    for curve in c.curves:
        md += [f"### {curve.factor}", "", f"![{curve.factor}]({curve.path.as_posix()})", "",
               _md_table(*_curve_rows(curve)), ""]
    md += ["## Parallel coordinates", ""]
    md += [f"![parallel coordinates]({c.images['parallel']})" if "parallel" in c.images else _NO_PARALLEL, ""]
    if "history" in c.images:
        md += ["## Objective per epoch", "", f"![objective per epoch]({c.images['history']})", ""]
    md += ["## Best trial", ""]
    if c.best is None:
        md += ["No FINISHED run has the objective: no best trial.", ""]
        return "\n".join(md)
    md += [(f"Trial **{c.best.label}** (run `{c.best.run_id}`, {c.best.status_text}), {c.objective} = "
            f"{_fmt(c.best.value(c.objective))}; chosen by {c.best_why}."), ""]
    if c.best_command:
        md += [f"Re-run: `{c.best_command}`", ""]
    md += ["Its config, varied keys in **bold**:", "",
           _md_table(["key", "value"], [[f"**{k}**" if v else k, val] for k, val, v in _config_rows(c)]), ""]
    if "learning" in c.images:
        md += ["### Learning curves", "", f"![learning curves]({c.images['learning']})", ""]
    if c.best_files:
        md += ["### Plots and previews", "", *[f"![{p}]({p})" for p in c.best_files], ""]
    return "\n".join(md)


def _img(src: str, alt: str) -> str:
    return f"<img src='{html.escape(src, quote=True)}' alt='{html.escape(alt, quote=True)}'>"


def _code(text: str) -> str:
    """Markdown `code` spans as HTML."""
    parts = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


def _render_html(c: _Content) -> str:
    e = html.escape
    err_col = {len(c.head) - 1: "err"} if c.head[-1] == "error" else {}
    h = ["<!doctype html><html><head><meta charset='utf-8'>",
         f"<title>Sweep report: {e(c.experiment)}</title><style>{_CSS}</style></head><body>",
         f"<h1>Sweep report: {e(c.experiment)}</h1>", f"<p class='meta'>{e(c.header)}</p>",
         (f"<p>Objective: <code>{e(c.objective)}</code> ({c.mode}), its last logged value; "
          f"{e(c.objective_source)}. {_code(_INTERVALS)}</p>"),
         "<h2>Trials</h2>", _html_table(c.head, c.rows, c.row_class, err_col)]
    if c.best is not None:
        h.append(f"<p>★ best trial: {e(c.best.label)} ({e(c.best_why)}).</p>")
    h.append("<h2>Ablation curves</h2>")
    if not c.factors:
        h.append(f"<p>{_NOTHING_VARIES}</p>")
    elif not c.curves:
        h.append(f"<p>No FINISHED run has <code>{e(c.objective)}</code>: nothing to plot.</p>")
    for curve in c.curves:
        h += [f"<h3>{e(curve.factor)}</h3>", _img(curve.path.as_posix(), curve.factor),
              "<details><summary>means per point</summary>", _html_table(*_curve_rows(curve)), "</details>"]
    h.append("<h2>Parallel coordinates</h2>")
    h.append(_img(c.images["parallel"], "parallel coordinates") if "parallel" in c.images else f"<p>{_NO_PARALLEL}</p>")
    if "history" in c.images:
        h += ["<h2>Objective per epoch</h2>", _img(c.images["history"], "objective per epoch")]
    h.append("<h2>Best trial</h2>")
    if c.best is None:
        h += ["<p>No FINISHED run has the objective: no best trial.</p>", "</body></html>"]
        return "\n".join(h)
    h.append(f"<p>Trial <b>{e(c.best.label)}</b> (run <code>{e(c.best.run_id)}</code>, {e(c.best.status_text)}), "
             f"{e(c.objective)} = {_fmt(c.best.value(c.objective))}; chosen by {e(c.best_why)}.</p>")
    if c.best_command:
        h.append(f"<p>Re-run: <code>{e(c.best_command)}</code></p>")
    cells = "".join(f"<tr><td>{'<mark>' + e(k) + '</mark>' if v else e(k)}</td><td>{e(val)}</td></tr>"
                    for k, val, v in _config_rows(c))
    h.append("<details open><summary>its config (varied keys highlighted)</summary><table><thead><tr><th>key</th>"
             f"<th>value</th></tr></thead><tbody>{cells}</tbody></table></details>")
    if "learning" in c.images:
        h += ["<h3>Learning curves</h3>", _img(c.images["learning"], "learning curves")]
    if c.best_files:
        h.append("<h3>Plots and previews</h3><div class='gallery'>")
        h += [f"<figure>{_img(p, Path(p).name)}<figcaption>{e(p)}</figcaption></figure>" for p in c.best_files]
        h.append("</div>")
    h.append("</body></html>")
    return "\n".join(h)


# -- the command -------------------------------------------------------------------------------------------------------

def _cmd_report(args: argparse.Namespace) -> int:
    from mate.tracking import default_uri

    uri = args.tracking_uri or default_uri(args.workspace)
    build_report(uri, args.experiment, args.out, workspace=args.workspace, log_to_parent=not args.no_log)
    return 0


def add_parser(sub) -> argparse.ArgumentParser:
    """Register `mate report` on the CLI's subparsers."""
    p = sub.add_parser("report", help="an HTML/Markdown report of a sweep, read from its MLflow experiment only")
    p.add_argument("experiment", help="the sweep's MLflow experiment (its sweep name)")
    p.add_argument("--out", help="folder to write into (default <workspace>/reports/<experiment>/)")
    p.add_argument("--tracking-uri", help="MLflow store (default sqlite:///<workspace>/mlflow.db); a server works too")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the sweep's parent run")
    p.set_defaults(func=_cmd_report)
    return p
