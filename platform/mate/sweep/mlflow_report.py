"""`mate report EXPERIMENT`: a sweep's report built only from the MLflow store (docs/architecture.md §8).

It reads what the sweep's Tune callback wrote (one experiment per sweep, a parent run tagged `mate.role=parent`, one
child run per trial with tag `mlflow.parentRunId`, params = the trial's flat config, metrics per generator epoch,
artifacts per child, `best.yaml` on the parent), so it works for any past sweep on a local SQLite store or a server,
without the sweep's folder. It writes into `--out` (default `<workspace>/reports/<experiment>/`):

- `report.md` and `report.html` (the HTML references the images beside it), with a section on which knobs matter
  beyond seed noise (`mate.sweep.importance`);
- `img/`: ablation curves per varied factor (mean over seeds with a t-based 95% band), a parallel-coordinates plot,
  the objective's history for every trial and the best trial's learning curves;
- `best/`: the best trial's `plots/*.png` and `previews/*.gif`, downloaded from its artifacts;

and logs all of it to the parent run under `report/`.

The trial table shows, per child run: status (stopped-early flag), the params that vary across runs, the objective's
last value, the test figures as `x ± ci` (`<name>_ci95`: the interval over evaluation repetitions), cost and, for
failed runs, the error line. The curves pool seeds with Student-t intervals (`t_interval`), which is a different
interval from `_ci95` (docs/architecture.md §6).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from mate.errors import UserError

from .importance import ParamImportance, effects_markdown, figure_effects, importances_markdown, knob_effects
from .report_plots import (
    EXTRA_CURVES,
    ablation_curve,
    importance_bars,
    learning_curves,
    objective_histories,
    parallel_coordinates,
)
from .report_render import Content, render_html, render_md
from .report_runs import (
    COST_METRIC,
    MAX_DOWNLOADS,
    SEED_KEY,
    TEST_METRICS,
    Trial,
    all_runs,
    choose_objective,
    download_tree,
    find_experiment,
    flat_config,
    fmt,
    open_store,
    pick_best,
    quiet_downloads,
    read_best_yaml,
    split_parent,
    to_trial,
    varied_params,
)

log = logging.getLogger(__name__)



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
    head = ["trial", "status", *columns, objective, *tests, *(["cost s"] if cost else []),
            *(["error"] if errors else [])]
    rows = []
    for t in trials:
        mark = " ★" if best is not None and t.run_id == best.run_id else ""
        row = [t.label + mark, t.status_text, *[t.params.get(k, "") for k in columns], fmt(t.value(objective)),
               *[_with_ci(t, m) for m in tests]]
        if cost:
            row.append(fmt(round(t.value(COST_METRIC), 1)) if COST_METRIC in t.metrics else "")
        if errors:
            row.append(t.error.splitlines()[0][:300] if t.error else "")
        rows.append(row)
    return head, rows


def build_report(uri: str, experiment: str, out: str | Path | None = None, workspace: str | Path | None = None, *,
                 log_to_parent: bool = True, log=print) -> Path:
    """Write `report.md`, `report.html` and their images for sweep `experiment` into `out` (default
    `<workspace>/reports/<experiment>/`), from the MLflow store at `uri` only; log them to the sweep's parent run
    under `report/`. Returns the HTML path. An unknown experiment, or one without trial runs, is a `UserError`."""
    with quiet_downloads():
        return _build(uri, experiment, out, workspace, log_to_parent, log)


def _build(uri: str, experiment: str, out: str | Path | None, workspace: str | Path | None, log_to_parent: bool,
           log) -> Path:
    from mate.tracking import _folder_name, sqlite_path

    tracker = open_store(uri, workspace)
    client = tracker.client
    exp = find_experiment(client, experiment, uri)
    runs = all_runs(client, exp.experiment_id)
    parent, children = split_parent(runs, experiment)
    if not children:
        names = ", ".join(f"{r.info.run_name or r.info.run_id[:8]} ({r.info.status})" for r in runs[:20])
        more = f", … ({len(runs)} in all)" if len(runs) > 20 else ""
        raise UserError(f"MLflow experiment {experiment!r} in {uri} has no trial runs (child runs of a sweep's parent "
                        f"run); it holds {len(runs)} run(s){': ' + names + more if runs else ''}")
    db = sqlite_path(uri)
    ws = Path(workspace) if workspace is not None else (db.parent if db is not None else Path("."))
    if out is None:
        out = ws / "reports" / _folder_name(experiment)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for owned in ("img", "best"):  # what an earlier report left there (this report owns these folders)
        shutil.rmtree(out / owned, ignore_errors=True)
    img = out / "img"
    img.mkdir()

    def rel(path: Path) -> str:
        return path.relative_to(out).as_posix()

    trials = [to_trial(r) for r in children]
    images: dict[str, str] = {}

    with tempfile.TemporaryDirectory() as tmp:
        best_doc = read_best_yaml(client, parent.info.run_id, Path(tmp)) if parent is not None else None
    objective, mode, source = choose_objective(trials, best_doc)
    best, best_why = pick_best(trials, best_doc, objective, mode)
    varied = varied_params(trials)
    factors = [k for k in varied if k != SEED_KEY]
    columns = ([SEED_KEY] if any(SEED_KEY in t.params for t in trials) else []) + factors

    # 1. the table
    head, rows = trial_table(trials, columns, objective, best)
    row_class = ["best" if best is not None and t.run_id == best.run_id else
                 "failed" if t.status in ("FAILED", "KILLED") else "early" if t.stopped_early else "" for t in trials]

    # 2. ablation curves over the FINISHED runs that ran to the end (a stopped-early one stopped at another epoch)
    searched = [t for t in trials if not t.rerun_of]  # replicates get their own section
    curve_runs = [t for t in searched if t.status == "FINISHED" and not t.stopped_early] or \
        [t for t in searched if t.status == "FINISHED"]
    metrics = [objective] + [m for m in EXTRA_CURVES if m != objective and any(m in t.metrics for t in curve_runs)]
    # does each knob matter beyond seed noise: a blocked ANOVA where points repeat over seeds, Optuna's importances
    # (against shuffled objectives) where the sweep was a search with a study in the workspace
    points = [tuple(t.params.get(k) for k in factors) for t in curve_runs]
    replicated = len(set(points)) < len(points)  # a grid over seeds (a search samples each point once)
    effects = (knob_effects([(t.params, t.value(objective)) for t in curve_runs], factors, SEED_KEY)
               if replicated else [])
    # the same test on the test figures, to read beside it (selection stays on val)
    test_effects = (figure_effects([(t.params, t.metrics) for t in curve_runs], factors, seed_key=SEED_KEY)
                    if replicated else {})
    replicas = replicate_rows(trials, objective)
    notes: dict[str, dict[str, str]] = {}  # knob -> figure -> its test's verdict, a panel's title
    for figure, figure_tests in [(objective, effects), *test_effects.items()]:
        for e in figure_tests:
            notes.setdefault(e.knob, {})[figure] = (f"{e.verdict}: F={e.f:.3g}, p={e.p:.3g}" if e.p is not None
                                                    else e.verdict)
    curves = [c for c in (ablation_curve(curve_runs, f, [k for k in factors if k != f], metrics,
                                         img / f"ablation_{_safe(f)}.png", notes.get(f)) for f in factors)
              if c is not None]
    importances, importance_note = _search_importances(ws, experiment)
    if importance_bars(importances, img / "importances.png"):
        images["importances"] = rel(img / "importances.png")
    if effects:  # on the terminal too: the answer a researcher runs the report for
        log(effects_markdown(effects, objective))
    if importances:
        log(importances_markdown(importances, importance_note))

    # 3. parallel coordinates, and the objective per epoch of every trial
    if factors and parallel_coordinates(trials, factors, objective, img / "parallel_coordinates.png"):
        images["parallel"] = rel(img / "parallel_coordinates.png")
    if objective_histories(client, trials, objective, best, img / "objective_per_epoch.png"):
        images["history"] = rel(img / "objective_per_epoch.png")

    # 4. the best trial
    best_files: list[Path] = []
    config: dict[str, str] = {}
    if best is not None:
        if best_doc and best_why.startswith("best.yaml"):
            config = flat_config(best_doc.get("config"))
        config = config or dict(best.params)
        if learning_curves(client, best, objective, img / "best_learning_curves.png"):
            images["learning"] = rel(img / "best_learning_curves.png")
        for folder, suffixes in (("plots", (".png",)), ("previews", (".gif",))):
            best_files += download_tree(client, best.run_id, folder, out / "best", suffixes,
                                         MAX_DOWNLOADS - len(best_files))

    counts: dict[str, int] = {}
    for t in trials:
        counts[t.status_text] = counts.get(t.status_text, 0) + 1
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    when = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parent_text = f"{parent.info.run_name} ({parent.info.run_id})" if parent is not None else "none"
    content = Content(
        experiment=experiment,
        header=f"Store {uri}, experiment id {exp.experiment_id}, parent run {parent_text}; {len(trials)} trials: "
               f"{summary}. Generated {when} from MLflow only.",
        objective=objective, mode=mode, objective_source=source, head=head, rows=rows, row_class=row_class,
        factors=factors, varied=varied, curves=curves, images=images, best=best, best_why=best_why,
        best_command=str((best_doc or {}).get("command") or "") if best_why.startswith("best.yaml") else "",
        config=config, best_files=[rel(p) for p in best_files], effects=effects, test_effects=test_effects,
        importances=importances, importance_note=importance_note, replicas=replicas)
    for c in curves:
        c.path = Path(rel(c.path))
    (out / "report.md").write_text(render_md(content))
    report = out / "report.html"
    report.write_text(render_html(content))

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


def replicate_rows(trials: Sequence[Trial], objective: str) -> tuple[list[str], list[list[str]]] | None:
    """(head, rows): each re-run search trial's single value, then its replicates' mean ± t-interval over seeds."""
    from mate.evaluate.bootstrap import interval_text

    groups: dict[str, list[Trial]] = {}
    for t in trials:
        if t.rerun_of:
            groups.setdefault(t.rerun_of, []).append(t)
    if not groups:
        return None
    source = {t.trial_id: t for t in trials if not t.rerun_of}
    metrics = [objective, *[m for m in TEST_METRICS if any(m in t.metrics for t in trials)]]
    head, rows = ["search trial", "runs", "seeds", *metrics], []
    for of, reps in groups.items():
        if of in source:
            one = source[of]
            rows.append([f"{of} (search)", "1", one.params.get(SEED_KEY, ""),
                         *[interval_text([one.value(m)]) for m in metrics]])
        # in seed order: MLflow returns concurrent replicates in whichever order they started
        done = sorted((t for t in reps if t.status == "FINISHED"), key=lambda t: int(t.params.get(SEED_KEY) or 0))
        rows.append([f"{of} (replicates)", f"{len(done)} of {len(reps)}",
                     ", ".join(t.params.get(SEED_KEY, "") for t in done) or "-",
                     *[interval_text([t.value(m) for t in done]) for m in metrics]])
    return head, rows


def _search_importances(ws: Path, experiment: str) -> tuple[list[ParamImportance], str]:
    """Optuna's importances on the sweep's study (`<workspace>/optuna.db`, named as the experiment), if there is one."""
    from .importance import load_study, study_importances

    db = ws / "optuna.db"
    study = load_study(f"sqlite:///{db}", experiment) if db.is_file() else None
    if study is None:
        return [], f"no Optuna study {experiment!r} in {db} (grids have none; a search's lives there)"
    try:
        return study_importances(study)
    except (RuntimeError, ValueError) as exc:
        return [], f"Optuna's importances failed on study {experiment!r}: {exc}"


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
