"""How `mate report` shows what it found: the report's content, rendered as Markdown and as HTML (one place for both,
so the two never disagree on what a section holds)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .importance import (KnobEffect, ParamImportance, effects_table, figure_effects_table, figure_effects_text,
                         importances_table)
from .report_plots import Curve
from .report_runs import Trial, fmt


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
class Content:
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
    effects: list[KnobEffect]
    test_effects: dict[str, list[KnobEffect]]  # test figure -> the same test on it (read, never selected on)
    importances: list[ParamImportance]
    importance_note: str
    replicas: tuple[list[str], list[list[str]]] | None = None  # replicates of the best configs (head, rows)


def _importance_parts(c: Content) -> list[tuple[str, object]]:
    """The knob section as ("text" | "table" | "image", content) parts, for both renderings."""
    parts: list[tuple[str, object]] = []
    if c.effects:
        parts += [("text", (f"Analysis of variance of `{c.objective}` per varied knob, the seed as a block (runs "
                            "that ran to the end); a knob matters when p < 0.05. Partial η² = SS_knob / (SS_knob + "
                            "SS_residual); the spread is max - min of the knob's level means.")),
                  ("table", effects_table(c.effects))]
    if c.test_effects:
        parts += [("text", figure_effects_text(c.test_effects)), ("table", figure_effects_table(c.test_effects))]
    if c.importances:
        parts += [("text", (f"Optuna's fANOVA importances on the study ({c.importance_note}): each param's share of "
                            "the objective's variance against the share it gets when the objective values are "
                            "shuffled among the trials; within noise when p >= 0.05.")),
                  ("table", importances_table(c.importances))]
        if "importances" in c.images:
            parts.append(("image", c.images["importances"]))
    elif not c.effects:
        parts.append(("text", ("No knob can be tested: no point ran over several seeds, and "
                               f"{c.importance_note or 'no Optuna study'}.")))
    return parts


def _config_rows(c: Content) -> list[tuple[str, str, bool]]:
    return [(k, v, k in c.varied) for k, v in sorted(c.config.items(), key=lambda kv: (kv[0] not in c.varied, kv[0]))]


def _curve_rows(curve: Curve) -> tuple[list[str], list[list[str]]]:
    return (["slice", curve.factor, "metric", "mean ± t95", "n"],
            [[s or "-", v, m, txt, str(n)] for s, v, m, txt, n in curve.table])


_REPLICAS = ("Each re-run config's single search run, then the mean ± t-based 95% interval over its replicate seeds "
             "(the space's `rerun`): one search run is one seed's draw.")
_NOTHING_VARIES = "No param varies across the runs except the seed: nothing to plot."
_NO_PARALLEL = "Not enough to draw (no varied param or no run with the objective)."
_INTERVALS = ("Test figures are `value ± ci95` (the interval over evaluation repetitions); the ablation means pool "
              "seeds with a Student-t 95% interval.")


def render_md(c: Content) -> str:
    md = [f"# Sweep report: {c.experiment}", "", c.header, "",
          f"Objective: `{c.objective}` ({c.mode}), its last logged value; {c.objective_source}. {_INTERVALS}", "",
          "## Trials", "", _md_table(c.head, c.rows), ""]
    if c.best is not None:
        md += [f"★ best trial: {c.best.label} ({c.best_why}).", ""]
    md += ["## Which knobs matter", ""]
    for kind, part in _importance_parts(c):
        md += [_md_table(*part) if kind == "table" else f"![importances]({part})" if kind == "image" else part, ""]
    if c.replicas is not None:
        md += ["## Replicates of the best configs", "", _REPLICAS, "", _md_table(*c.replicas), ""]
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


def render_html(c: Content) -> str:
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
    h.append("<h2>Which knobs matter</h2>")
    for kind, part in _importance_parts(c):
        h.append(_html_table(*part) if kind == "table" else _img(part, "importances") if kind == "image"
                 else f"<p>{_code(part)}</p>")
    if c.replicas is not None:
        h += ["<h2>Replicates of the best configs</h2>", f"<p>{_REPLICAS}</p>", _html_table(*c.replicas)]
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
