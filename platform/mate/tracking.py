"""MLflow runs, params, metrics and artifacts: the one place model-side code meets MLflow.

Everything goes through an explicit `MlflowClient` (never the fluent `mlflow.start_run` global state), because the
sweep driver manages many runs at once from a Tune callback. MLflow is imported inside functions, so importing this
module is cheap and the model code runs without MLflow installed.

- `Tracker(uri, workspace)`: a client on one store. For a database store (`sqlite:///…`, and other SQLAlchemy URIs)
  each experiment is created with its artifact location under `<workspace>/mlartifacts/<experiment>`, so nothing is
  written outside the workspace (MLflow's own default is `./mlruns` or `./mlartifacts` in the current directory). A
  server URI (`http://…`) keeps the server's artifact store.
- `Tracker.run(experiment_id, tags)` finds or creates a run by its identity tags (`{"sweep": s, "trial_id": t}`):
  a resumed trial continues its run and never opens a duplicate.
- `track_run(...)`: a context manager for a single command (`mate train --tracking-uri URI`) that finishes the run
  FINISHED, FAILED (exception, re-raised) or KILLED (Ctrl-C).

Params are immutable in MLflow: logging a different value for a logged key raises there. `log_params` does not pass
that on: the first value stays, the new one is recorded in the run's `mate.params_changed` tag and a warning is
logged. A resumed trial may legitimately come back with a different budget key (a sweep is restored with its budget
keys aside), and a tracking detail must never crash the sweep driver or a finished training run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"
CHANGED_PARAMS_TAG = "mate.params_changed"
STATUSES = ("FINISHED", "FAILED", "KILLED")
DB_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")

# MLflow's limits (mlflow.utils.validation); copied so that importing this module does not import MLflow.
MAX_PARAM_VAL_LENGTH = 6000
MAX_TAG_VAL_LENGTH = 8000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000
_NAME_RE = re.compile(r"^[/\w.\- :]*$")  # what MLflow accepts as a param, metric or tag key
_PLAIN_RE = re.compile(r"^[\w.\-:/ @+=,]*$")  # tag values safe to put in a search filter


def default_uri(workspace: str | Path) -> str:
    """The workspace's local MLflow store: `sqlite:///<absolute workspace>/mlflow.db`."""
    return f"sqlite:///{Path(workspace).expanduser().resolve() / 'mlflow.db'}"


def artifact_root(workspace: str | Path) -> Path:
    """Where a local store's artifacts live: `<workspace>/mlartifacts`."""
    return Path(workspace).expanduser().resolve() / "mlartifacts"


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///…` URI (absolute), or None for another scheme or an in-memory database."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    if not rest or rest == ":memory:":
        return None
    return Path(rest).expanduser().resolve()


def is_database_uri(uri: str) -> bool:
    """True for a SQLAlchemy store URI (`sqlite:`, `postgresql+psycopg2:`, …): a store without an artifact store."""
    scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme in DB_SCHEMES


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys: {"align": {"lr": 1}} -> {"align.lr": 1}."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, prefix=f"{name}."))
        else:
            out[name] = value
    return out


def truncate(text: str, limit: int) -> str:
    """`text` cut to `limit` characters with a visible marker saying how long it was."""
    if len(text) <= limit:
        return text
    marker = f"...[truncated, {len(text)} chars]"
    return text[: limit - len(marker)] + marker


def param_value(value: Any) -> str:
    """A param's stored form: `str(value)` (None -> "None"), truncated to MLflow's limit."""
    return truncate(str(value), MAX_PARAM_VAL_LENGTH)


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i: i + size]


def _now_ms() -> int:
    return int(time.time() * 1000)


def _filter_string(tags: Mapping[str, str]) -> str:
    """An MLflow search filter on the tags whose key and value are plain text (no quotes, backslashes, …).

    The filter only narrows the search; the caller checks every tag itself, so a tag left out (its value could be
    misread by MLflow's filter parser) can never make a run that matches look like one that does not.
    """
    return " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items() if _NAME_RE.match(k) and _PLAIN_RE.match(v))


def _folder_name(experiment: str) -> str:
    """A safe folder name for an experiment (a hash is added when characters had to be replaced)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", experiment).strip("._") or "experiment"
    if safe != experiment:
        safe = f"{safe}-{hashlib.sha256(experiment.encode()).hexdigest()[:8]}"
    return safe


@dataclass(frozen=True)
class RunRef:
    """A run found in the store: its id, name, status (RUNNING, FINISHED, FAILED, KILLED) and tags."""

    run_id: str
    name: str
    status: str
    tags: dict[str, str] = field(default_factory=dict)


class Tracker:
    """An MLflow client on one store (`uri`); `workspace` holds the artifacts of a database store.

    Without a workspace, a `sqlite:///path/mlflow.db` store keeps its artifacts in `path/mlartifacts`.
    """

    def __init__(self, uri: str, workspace: str | Path | None = None):
        from mlflow.tracking import MlflowClient

        self.uri = uri
        db = sqlite_path(uri)
        if workspace is None and db is not None:
            workspace = db.parent
        self.workspace = Path(workspace).expanduser().resolve() if workspace is not None else None
        if db is not None:
            db.parent.mkdir(parents=True, exist_ok=True)  # sqlite cannot create the folder itself
        self.client = MlflowClient(tracking_uri=uri)

    # experiments -----------------------------------------------------------------------------------------------

    def artifact_location(self, experiment: str) -> str | None:
        """The artifact location a new experiment gets: a file URI in the workspace, or None (the server decides)."""
        if self.workspace is None or not is_database_uri(self.uri):
            return None
        return (artifact_root(self.workspace) / _folder_name(experiment)).as_uri()

    def experiment(self, name: str) -> str:
        """The id of experiment `name`, created (with its artifact location in the workspace) when it does not exist.

        A deleted experiment is not silently restored: that is one clear error saying what to do.
        """
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(name)
        if found is None:
            try:
                return self.client.create_experiment(name, artifact_location=self.artifact_location(name))
            except MlflowException:
                found = self.client.get_experiment_by_name(name)  # created meanwhile by another process
                if found is None:
                    raise
        if found.lifecycle_stage == "deleted":
            raise RuntimeError(
                f"MLflow experiment {name!r} (id {found.experiment_id}) in {self.uri} is deleted: restore it "
                f"(mlflow experiments restore --experiment-id {found.experiment_id}) or purge it "
                f"(mlflow gc --backend-store-uri {self.uri}), or use another name"
            )
        return found.experiment_id

    # runs --------------------------------------------------------------------------------------------------------

    def find_runs(self, experiment_id: str, tags: Mapping[str, Any], status: str | None = None) -> list[RunRef]:
        """The active (not deleted) runs of the experiment that carry all of `tags`, oldest first."""
        want = {str(k): str(v) for k, v in tags.items()}
        query = _filter_string(want)
        if status is not None:
            query = " and ".join(q for q in (query, f"attributes.status = '{status}'") if q)
        found: list[RunRef] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id], filter_string=query, max_results=1000,
                order_by=["attributes.start_time ASC", "attributes.run_id ASC"], page_token=token,
            )
            for run in page:
                have = run.data.tags
                if all(have.get(k) == v for k, v in want.items()) and (status is None or run.info.status == status):
                    found.append(RunRef(run.info.run_id, run.info.run_name, run.info.status, dict(have)))
            token = page.token
            if not token:
                return found

    def run(self, experiment_id: str, tags: Mapping[str, Any], name: str | None = None,
            parent_run_id: str | None = None) -> str:
        """Find or create the run with identity `tags`; returns its id.

        A run of the experiment that already has all of `tags` is reused (the oldest, if several) and set back to
        RUNNING when it had ended (killed, failed); otherwise a new run is created with those tags. Empty `tags`
        always create a new run. `parent_run_id` nests the run under a parent (tag `mlflow.parentRunId`).
        """
        identity = {str(k): str(v) for k, v in tags.items()}
        if identity:
            existing = self.find_runs(experiment_id, identity)
            if existing:
                ref = existing[0]
                if ref.status != "RUNNING":
                    self.client.update_run(ref.run_id, status="RUNNING")
                if parent_run_id is not None and ref.tags.get(PARENT_TAG) != parent_run_id:
                    self.client.set_tag(ref.run_id, PARENT_TAG, parent_run_id)
                return ref.run_id
        create_tags = dict(identity)
        if parent_run_id is not None:
            create_tags[PARENT_TAG] = parent_run_id
        return self.client.create_run(experiment_id, tags=create_tags, run_name=name).info.run_id

    def finish(self, run_id: str, status: str = "FINISHED") -> None:
        """End the run with `status`: FINISHED, FAILED or KILLED."""
        if status not in STATUSES:
            raise ValueError(f"run status must be one of {', '.join(STATUSES)}, not {status!r}")
        self.client.set_terminated(run_id, status=status)

    # logging -------------------------------------------------------------------------------------------------------

    def log_params(self, run_id: str, config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        """Log `config` as params (dotted keys, values as strings, truncated to MLflow's limit).

        Keys already logged with the same value are skipped. Keys logged with a different value keep their first
        value (MLflow params are immutable); the change goes into the `mate.params_changed` tag and a warning.
        Returns the changed keys: key -> (logged value, new value).
        """
        from mlflow.entities import Param, RunTag

        values = {str(k): param_value(v) for k, v in flatten(config).items()}
        logged = self.client.get_run(run_id).data
        changed = {k: (logged.params[k], v) for k, v in values.items() if k in logged.params and logged.params[k] != v}
        new = [Param(k, v) for k, v in values.items() if k not in logged.params]
        for chunk in _chunks(new, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, params=chunk)
        if changed:
            log.warning("run %s: params already logged with other values kept their first value: %s", run_id,
                        ", ".join(f"{k} ({old!r} -> {v!r})" for k, (old, v) in changed.items()))
            record: dict[str, Any] = {}
            with contextlib.suppress(ValueError):
                record = json.loads(logged.tags.get(CHANGED_PARAMS_TAG, "{}"))
            record.update({k: {"logged": old, "new": v} for k, (old, v) in changed.items()})
            text = truncate(json.dumps(record, sort_keys=True), MAX_TAG_VAL_LENGTH)
            self.client.log_batch(run_id, tags=[RunTag(CHANGED_PARAMS_TAG, text)])
        return changed

    def log_metrics(self, run_id: str, metrics: Mapping[str, Any], step: int) -> list[str]:
        """Log `metrics` (names exactly as given, e.g. `val/eval/fid`) at `step`, timestamped now.

        Values that are not finite numbers (NaN, inf, strings, None) and names MLflow refuses are skipped, with a
        debug log line; returns the skipped names.
        """
        from mlflow.entities import Metric

        now, step = _now_ms(), int(step)
        batch, skipped = [], []
        for name, value in metrics.items():
            number = _finite(value)
            if number is None or not isinstance(name, str) or not _valid_key(name):
                skipped.append(str(name))
                continue
            batch.append(Metric(name, number, now, step))
        for chunk in _chunks(batch, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)
        if skipped:
            log.debug("run %s step %d: skipped metrics that are not finite numbers or not valid names: %s",
                      run_id, step, ", ".join(skipped))
        return skipped

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        """Set (or overwrite) run tags; values as strings, truncated to MLflow's limit."""
        from mlflow.entities import RunTag

        items = [RunTag(str(k), truncate(str(v), MAX_TAG_VAL_LENGTH)) for k, v in tags.items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=chunk)

    def move_tag(self, run_id: str, key: str, to: str) -> bool:
        """Rename a run's tag `key` to `to` (the value kept); False when the run has no `key`."""
        value = self.client.get_run(run_id).data.tags.get(key)
        if value is None:
            return False
        self.set_tags(run_id, {to: value})
        self.client.delete_tag(run_id, key)
        return True

    def log_artifacts(self, run_id: str, folder: str | Path, artifact_path: str | None = None) -> None:
        """Copy the contents of `folder` into the run's artifacts (under `artifact_path`)."""
        self.client.log_artifacts(run_id, str(folder), artifact_path)

    def log_artifact(self, run_id: str, file: str | Path, artifact_path: str | None = None) -> None:
        """Copy one file into the run's artifacts (under `artifact_path`)."""
        self.client.log_artifact(run_id, str(file), artifact_path)

    def handle(self, run_id: str) -> RunHandle:
        """The run as an object whose methods need no run id."""
        return RunHandle(self, run_id)


def _finite(value: Any) -> float | None:
    if isinstance(value, (str, bytes)) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _valid_key(name: str) -> bool:
    import posixpath

    norm = posixpath.normpath(name)
    return bool(name) and len(name) <= 250 and bool(_NAME_RE.match(name)) and norm == name and not (
        norm == "." or norm.startswith(("..", "/")))


@dataclass
class RunHandle:
    """One run of a `Tracker`: the logging methods without the run id."""

    tracker: Tracker
    run_id: str

    def log_params(self, config: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
        return self.tracker.log_params(self.run_id, config)

    def log_metrics(self, metrics: Mapping[str, Any], step: int) -> list[str]:
        return self.tracker.log_metrics(self.run_id, metrics, step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tracker.set_tags(self.run_id, tags)

    def log_artifacts(self, folder: str | Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifacts(self.run_id, folder, artifact_path)

    def log_artifact(self, file: str | Path, artifact_path: str | None = None) -> None:
        self.tracker.log_artifact(self.run_id, file, artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        self.tracker.finish(self.run_id, status)


@contextlib.contextmanager
def track_run(uri: str, workspace: str | Path | None, experiment: str, run_name: str | None = None,
              params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
              identity: Mapping[str, Any] | None = None) -> Iterator[RunHandle]:
    """One tracked run for a single command; yields a `RunHandle`.

    A new run is created, or with `identity` tags found or created as `Tracker.run` does. `params` and `tags` are
    logged at the start. On leaving, the run ends FINISHED; FAILED when an exception escapes (it is re-raised), KILLED
    on KeyboardInterrupt, and for SystemExit FINISHED when its code is 0/None, FAILED otherwise.
    """
    tracker = Tracker(uri, workspace)
    run_id = tracker.run(tracker.experiment(experiment), identity or {}, name=run_name)
    handle = tracker.handle(run_id)
    if tags:
        handle.set_tags(tags)
    if params:
        handle.log_params(params)
    try:
        yield handle
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            status = "KILLED"
        elif isinstance(exc, SystemExit) and exc.code in (0, None):
            status = "FINISHED"
        else:
            status = "FAILED"
        try:
            handle.finish(status)
        except Exception:  # never hide the real error behind a tracking one
            log.exception("could not mark MLflow run %s as %s", run_id, status)
        raise
    handle.finish("FINISHED")
