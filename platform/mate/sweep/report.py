"""The end of a sweep: a results table over every trial of every Tune run, the best trial (on its val objective),
`best.yaml` (the resolved config plus the command that re-runs it), the ablation table for grids (mean and t-based
95% interval over seeds per point), all logged to the parent MLflow run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from mate.sweep.rerun import FOLDER as RERUN_FOLDER
from mate.sweep.trainable import rerun_of, trial_params

SHOWN = ("eval/fid", "eval/r_precision_top3", "probe/word_pair_acc", "probe/word_pair_acc_comp")


def _last_result(trial_dir: Path) -> dict[str, Any]:
    path = trial_dir / "result.json"
    last: dict[str, Any] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                last = json.loads(line)
    return last


def _trial_id(dirname: str) -> str:
    """Tune names a trial folder `<trainable>_<trial id>_<n>_<params>_<date>`; our trainable is `trial_function`."""
    parts = dirname.removeprefix("trial_function_").split("_")
    return parts[0] if dirname.startswith("trial_function_") and parts[0] else dirname


def collect(sweep_dir: Path) -> list[dict[str, Any]]:
    """One row per trial: its id, params, status, last val objective values and (finished trials) test figures."""
    rows = []
    files = [*sorted((sweep_dir / "tune").glob("run-*/*/params.json")),
             *sorted((sweep_dir / "tune").glob(f"{RERUN_FOLDER}/*/params.json"))]
    for params_file in files:
        trial_dir = params_file.parent
        config = json.loads(params_file.read_text())
        params = trial_params(config)
        last = _last_result(trial_dir)
        run = trial_dir / "run"
        finished = (run / "metrics.json").is_file()
        failed = (trial_dir / "error.txt").is_file()
        row = {"trial": last.get("trial_id", _trial_id(trial_dir.name)),
               "tune_run": trial_dir.parent.name, "params": params, "last": last, "run_dir": str(run),
               "status": "finished" if finished else "failed" if failed else "stopped" if last else "no result",
               "rerun_of": rerun_of(config)}
        if finished:
            row["metrics"] = json.loads((run / "metrics.json").read_text())
            row["config"] = json.loads((run / "run.json").read_text())["config"]
        rows.append(row)
    return rows


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def table(rows: list[dict], metric: str, varied: list[str]) -> str:
    head = ["trial", "status", *varied, "seed", metric, *SHOWN]
    lines = [" | ".join(head)]
    for r in rows:
        m = r.get("metrics", {})
        cells = [r["trial"], r["status"], *[_fmt(r["params"].get(k, "")) for k in varied],
                 _fmt(r["params"].get("seed", "")), _fmt(r["last"].get(metric, float("nan"))),
                 *[_fmt(m.get(k, float("nan"))) for k in SHOWN]]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def ablation(rows: list[dict], space) -> str:
    """Grids: per point (seeds pooled), mean ± t-interval of the objective and the test figures."""
    from mate.evaluate.bootstrap import interval_text

    groups: dict[str, list[dict]] = {}
    for r in rows:
        point = {k: v for k, v in r["params"].items() if k != "seed"}
        groups.setdefault(json.dumps(point, sort_keys=True), []).append(r)
    metrics = [*space.metrics, *SHOWN]
    lines = ["| point | n | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for point, rs in groups.items():
        cells = [interval_text([r["last"].get(k) if k.startswith("val/") else r.get("metrics", {}).get(k)
                                for r in rs]) for k in metrics]
        label = ", ".join(f"{k}={v}" for k, v in json.loads(point).items()) or "(base)"
        lines.append(f"| {label} | {len(rs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def replicates(rows: list[dict], metric: str) -> str:
    """Searches with `rerun`: each re-run config's single search run beside the mean ± t-interval of its replicates
    (val objective: last report; test figures: finished runs)."""
    from mate.evaluate.bootstrap import interval_text

    groups: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("rerun_of"):
            groups.setdefault(r["rerun_of"], []).append(r)
    if not groups:
        return ""
    source = {r["trial"]: r for r in rows if not r.get("rerun_of")}
    metrics = [metric, *SHOWN]

    def cells(rs: list[dict]) -> list[str]:
        return [interval_text([r["last"].get(k) if k.startswith("val/") else r.get("metrics", {}).get(k)
                               for r in rs]) for k in metrics]

    lines = ["Replicates of the best configs: the search's single run, then the mean ± t-based 95% interval over "
             "the replicate seeds", "", "| search trial | runs | seeds | " + " | ".join(metrics) + " |",
             "|---" * (len(metrics) + 3) + "|"]
    for of, reps in groups.items():
        one = source.get(of)
        if one is not None:
            lines.append(f"| {of} (search) | 1 | {one['params'].get('seed')} | " + " | ".join(cells([one])) + " |")
        done = [r for r in reps if r["status"] == "finished"]
        seeds = ", ".join(str(r["params"].get("seed")) for r in done) or "-"
        lines.append(f"| {of} (replicates) | {len(done)} of {len(reps)} | {seeds} | " + " | ".join(cells(done)) + " |")
    return "\n".join(lines)


def knob_tests(rows: list[dict], space, metric: str) -> str:
    """Grids: per varied knob, whether it moves the objective beyond seed noise (mate.sweep.importance), then the
    same test on the test figures."""
    from mate.sweep.importance import effects_markdown, figure_effects, figure_effects_markdown, knob_effects

    knobs = [k for k in space.varied if k != "seed"]
    records = []
    for r in rows:
        if r["status"] == "finished":  # an ofat point names only its changed key: the others take the base's value
            cfg = space.trial_config(r["params"])
            records.append(({**{k: str(cfg[k]) for k in knobs}, "seed": str(r["params"].get("seed"))}, r))
    effects = knob_effects([(p, r["last"].get(metric)) for p, r in records], knobs)
    if not effects:
        return ""
    on_test = figure_effects([(p, r.get("metrics", {})) for p, r in records], knobs)
    return effects_markdown(effects, metric) + ("\n\n" + figure_effects_markdown(on_test) if on_test else "")


def search_importances(study) -> str:
    """Searches: Optuna's importances on the study, each against shuffled objectives (mate.sweep.importance)."""
    from mate.sweep.importance import importances_markdown, study_importances

    try:
        items, note = study_importances(study)
    except (RuntimeError, ValueError) as exc:  # a report never fails the sweep it closes
        return f"parameter importances: not computed ({exc})"
    return importances_markdown(items, note) if items else f"parameter importances: {note}"


def write_report(space, name: str, sweep_dir: Path, tracker, parent: str, *, study=None,
                 log: Callable[[str], None] = print) -> dict[str, Any]:
    import yaml

    every = collect(sweep_dir)
    rows = [r for r in every if not r.get("rerun_of")]  # the replicates have their own table
    metric, mode = space.metrics[0], space.modes[0]
    sign = 1 if mode == "max" else -1
    scored = [r for r in rows if r["status"] == "finished" and np.isfinite(r["last"].get(metric, np.nan))]
    best = max(scored, key=lambda r: sign * r["last"][metric]) if scored else None
    varied = list(space.varied)
    text = table(rows, metric, varied)
    (sweep_dir / "results.md").write_text(text + "\n")
    import csv

    with open(sweep_dir / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["trial", "status", *varied, "seed", metric, *SHOWN, "run_dir"])
        for r in rows:
            m = r.get("metrics", {})
            w.writerow([r["trial"], r["status"], *[r["params"].get(k, "") for k in varied], r["params"].get("seed"),
                        r["last"].get(metric), *[m.get(k) for k in SHOWN], r["run_dir"]])
    log(text)
    out: dict[str, Any] = {"rows": every, "best": best}
    if not space.is_search:
        abl = ablation(rows, space)
        try:
            tests = knob_tests(rows, space, metric)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # never fail the sweep it closes
            tests = f"knob tests: not computed ({exc})"
        if tests:
            abl += "\n\n" + tests
        (sweep_dir / "ablation.md").write_text(abl + "\n")
        log("\n" + abl)
        out["ablation"] = abl
    elif study is not None:
        imp = search_importances(study)
        (sweep_dir / "importance.md").write_text(imp + "\n")
        log("\n" + imp)
        out["importance"] = imp
    if reps := replicates(every, metric):
        (sweep_dir / "replicates.md").write_text(reps + "\n")
        log("\n" + reps)
        out["replicates"] = reps
    if best is not None:
        info = json.loads((Path(best["run_dir"]) / "run.json").read_text())
        best_yaml = sweep_dir / "best.yaml"
        doc = {"sweep": name, "trial": best["trial"], "metric": metric, "mode": mode, "value": best["last"][metric],
               "seed": best["config"]["seed"], "git_sha": info.get("git_sha"), "run_dir": best["run_dir"],
               "command": f"mate train --config {best_yaml}", "config": best["config"]}
        best_yaml.write_text(yaml.safe_dump(doc, sort_keys=False))
        log(f"\nbest: trial {best['trial']} {metric} = {best['last'][metric]:.4f} -> {best_yaml}")
        tracker.set_tags(parent, {"mate.best_trial": best["trial"], "mate.best_value": best["last"][metric]})
        if (Path(best["run_dir"]) / "generator.pt").is_file():  # the best generator only (docs/architecture.md §8)
            tracker.log_artifact(parent, Path(best["run_dir"]) / "generator.pt", "best")
        tracker.log_artifact(parent, best_yaml)
    for f in ("results.csv", "results.md", "ablation.md", "importance.md", "replicates.md"):
        if (sweep_dir / f).is_file():
            tracker.log_artifact(parent, sweep_dir / f)
    tracker.finish(parent, "FINISHED")
    log(f"compare runs: mate ui --workspace {sweep_dir.parent.parent}")
    return out
