"""`mate report EXPERIMENT`: a sweep's report built only from the MLflow store (docs/architecture.md §8).

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
interval from `_ci95` (docs/architecture.md §6).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import html
import logging
import math
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mate.errors import UserError

from .report_plots import (
    SECOND_CURVE,
    Curve,
    ablation_curve,
    learning_curves,
    objective_histories,
    parallel_coordinates,
)
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
    head = ["trial", "status", *columns, objective, *tests, *(["cost s"] if cost else []), *(["error"] if errors else [])]
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

    trials = [to_trial(r) for r in children]

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
            f"{fmt(c.best.value(c.objective))}; chosen by {c.best_why}."), ""]
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
             f"{e(c.objective)} = {fmt(c.best.value(c.objective))}; chosen by {e(c.best_why)}.</p>")
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
