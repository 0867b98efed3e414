"""What `mate report` reads from the MLflow store: a sweep's parent and child runs as `Trial`s, their
varied params, the objective and the best trial, and the artifacts to download. No plotting, no rendering."""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mate.errors import UserError

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
DEFAULT_OBJECTIVE = "val/probe/word_pair_acc"
SEED_KEY = "seed"
FALLBACK_OBJECTIVES = ("val/eval/r_precision_top3", "val/probe/word_pair_acc_comp", "val/eval/fid")
# test figures shown in the table, in this order, when any run has them (`<name>_ci95` gives the ± when logged)
TEST_METRICS = ("eval/fid", "eval/r_precision_top1", "eval/r_precision_top3", "eval/mm_dist", "eval/diversity",
                "probe/word_pair_acc", "probe/word_pair_acc_comp", "align/attn_in_span")
COST_METRIC = "cost/trial_seconds"
_LOWER_IS_BETTER = ("fid", "mm_dist", "foot_skate", "jitter", "loss", "seconds", "false_neg_rate")
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
    rerun_of: str = ""  # a replicate of this search trial (`mate.sweep.rerun`)

    @property
    def label(self) -> str:
        return self.trial_id or self.name or self.run_id[:8]

    @property
    def status_text(self) -> str:
        return f"{self.status} (stopped early)" if self.stopped_early else self.status

    def value(self, metric: str) -> float:
        v = self.metrics.get(metric)
        return float(v) if v is not None and math.isfinite(v) else math.nan


def open_store(uri: str, workspace: str | Path | None):
    from mate.tracking import Tracker, sqlite_path

    db = sqlite_path(uri)
    if db is not None and not db.is_file():
        raise UserError(f"no MLflow store at {db} (tracking URI {uri}): run a sweep first, or pass --tracking-uri "
                        f"or --workspace for the store that holds it")
    return Tracker(uri, workspace)


def find_experiment(client, name: str, uri: str):
    found = client.get_experiment_by_name(name)
    if found is None or found.lifecycle_stage == "deleted":
        names = sorted(e.name for e in client.search_experiments(max_results=1000) if e.name != "Default")
        there = ", ".join(names) if names else "none"
        what = "is deleted" if found is not None else "does not exist"
        raise UserError(f"MLflow experiment {name!r} {what} in {uri}; experiments there (one per sweep): {there}")
    return found


def all_runs(client, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token,
                                  order_by=["attributes.start_time ASC", "attributes.run_id ASC"])
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def split_parent(runs: list, experiment: str) -> tuple[Any, list]:
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


def to_trial(run) -> Trial:
    tags = run.data.tags
    return Trial(run_id=run.info.run_id, name=run.info.run_name or "", trial_id=tags.get("trial_id", ""),
                 status=run.info.status, stopped_early=tags.get("mate.stopped_early", "").lower() == "true",
                 error=tags.get("mate.error", ""), start_time=int(run.info.start_time or 0),
                 params=dict(run.data.params), metrics={k: float(v) for k, v in run.data.metrics.items()},
                 rerun_of=tags.get("mate.rerun_of", ""))


@contextlib.contextmanager
def quiet_downloads():
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


def read_best_yaml(client, parent_id: str, tmp: Path) -> dict[str, Any] | None:
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


def download_tree(client, run_id: str, folder: str, dst: Path, suffixes: tuple[str, ...], limit: int) -> list[Path]:
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


def number(text: str | None) -> float | None:
    if text is None or text.strip().lower() in ("true", "false", "none", ""):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def is_numeric(values: Iterable[str | None]) -> bool:
    values = list(values)
    return bool(values) and all(number(v) is not None and math.isfinite(number(v)) for v in values)


def sort_key(numeric: bool):
    return (lambda v: number(v)) if numeric else (lambda v: (v is None, str(v)))


def log_scale(values: Sequence[float]) -> bool:
    return len(values) > 2 and min(values) > 0 and max(values) / min(values) >= 10


def fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def metric_history(client, run_id: str, key: str) -> list[tuple[int, float]]:
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


# -- the report --------------------------------------------------------------------------------------------------------

def pick_best(trials: Sequence[Trial], best_doc: dict | None, objective: str, mode: str) -> tuple[Trial | None, str]:
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


def flat_config(doc: Any) -> dict[str, str]:
    from mate.tracking import flatten, param_value

    if not isinstance(doc, dict):
        return {}
    return {k: param_value(v) for k, v in flatten(doc).items()}


def choose_objective(trials: Sequence[Trial], best_doc: dict | None) -> tuple[str, str, str]:
    """(metric, mode, where it came from): best.yaml's, else the default, else the first val/* metric logged."""
    if best_doc and best_doc.get("metric"):
        metric = str(best_doc["metric"])
        return metric, str(best_doc.get("mode") or better(metric)), "from best.yaml on the parent run"
    logged = sorted({k for t in trials for k in t.metrics if k.startswith("val/") and not k.endswith("_ci95")})
    if DEFAULT_OBJECTIVE in logged or not logged:
        return DEFAULT_OBJECTIVE, better(DEFAULT_OBJECTIVE), "no best.yaml on the parent run: the default objective"
    metric = next((m for m in FALLBACK_OBJECTIVES if m in logged), logged[0])
    return metric, better(metric), f"no best.yaml on the parent run and no {DEFAULT_OBJECTIVE} logged"
