"""The sweep's only MLflow writer (docs/architecture.md §8): a Tune callback on the driver. Trials never open MLflow;
they report through Tune and leave their artifacts in their run folder, which this callback logs when they end.

One child run per trial under the sweep's parent run, found or created by the tags (sweep, trial_id), so a restored
trial continues its run instead of opening a duplicate. Trials a scheduler stopped early end FINISHED with the tag
`mate.stopped_early=true` (the run is complete as far as it went).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from ray import tune

from mate.sweep.rerun import RERUN_TAG
from mate.sweep.state import save_or_say
from mate.sweep.trainable import rerun_of, trial_params

ARTIFACT_FILES = ("metrics.json", "run.json", "history.jsonl", "aligned_rows.safetensors")
ARTIFACT_DIRS = ("plots", "previews")


class MlflowSweepCallback(tune.Callback):
    def __init__(self, tracker, experiment_id: str, parent_run_id: str, sweep: str, stopped: set[str],
                 pinned: dict[str, Any] | None = None, space=None):
        self.tracker, self.experiment_id, self.parent, self.sweep = tracker, experiment_id, parent_run_id, sweep
        self.stopped, self.pinned, self.space = stopped, dict(pinned or {}), space
        self.runs: dict[str, str] = {}

    def run_of(self, trial) -> str:
        if trial.trial_id not in self.runs:
            tags = {"sweep": self.sweep, "trial_id": trial.trial_id}
            if of := rerun_of(trial.config):
                tags[RERUN_TAG] = of
            run = self.tracker.run(self.experiment_id, tags, name=f"{self.sweep}-{trial.trial_id}",
                                   parent_run_id=self.parent)
            self.tracker.log_params(run, self.params(trial))
            self.runs[trial.trial_id] = run
        return self.runs[trial.trial_id]

    def params(self, trial) -> dict[str, Any]:
        """The trial's whole resolved config (what `mate train --config` would need), else what Tune sampled."""
        sampled = trial_params(trial.config)
        if self.space is None:
            return {**self.pinned, **sampled}
        return self.space.trial_config(sampled, extra=self.pinned).to_dict()

    def on_trial_start(self, iteration, trials, trial, **info):
        self.run_of(trial)

    def on_trial_restore(self, iteration, trials, trial, **info):
        self.run_of(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        metrics = {k: v for k, v in result.items() if "/" in k and isinstance(v, (int, float))
                   and not isinstance(v, bool) and math.isfinite(v)}
        self.tracker.log_metrics(self.run_of(trial), metrics, step=int(result.get("gen/epoch", 0)))

    def _artifacts(self, trial, run: str) -> None:
        folder = (trial.last_result or {}).get("run_dir")
        if folder and Path(folder).is_dir():  # the trial ran on this node
            self._log_folder(Path(folder), run)
            return
        with tempfile.TemporaryDirectory(prefix="mate-artifacts-") as tmp:  # elsewhere: its copy on the storage
            if _download_run(trial, Path(tmp)):
                self._log_folder(Path(tmp), run)

    def _log_folder(self, folder: Path, run: str) -> None:
        for name in ARTIFACT_FILES:
            if (folder / name).is_file():
                self.tracker.log_artifact(run, folder / name)
        for name in ARTIFACT_DIRS:
            if (folder / name).is_dir():
                self.tracker.log_artifacts(run, folder / name, name)

    def on_trial_complete(self, iteration, trials, trial, **info):
        run = self.run_of(trial)
        self._artifacts(trial, run)
        early = trial.trial_id in self.stopped
        self.tracker.set_tags(run, {"mate.stopped_early": str(early).lower(),
                                    "mate.evaluator_sha": self.pinned.get("evaluator.sha", ""),
                                    "mate.tokenizer_sha": self.pinned.get("tokenizer.sha") or ""})
        self.tracker.move_tag(run, "mate.error", "mate.retried_after")  # a failed trial that --retry-failed finished
        self.tracker.finish(run, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        run = self.run_of(trial)
        self._artifacts(trial, run)
        self.tracker.set_tags(run, {"mate.error": _error_of(trial)})
        self.tracker.finish(run, "FAILED")


class StateCallback(tune.Callback):
    """Saves the workspace's stores to the sweep's storage after each trial that starts or ends (`mate.sweep.state`);
    listed after the MLflow callback, so the saved store already holds the trial's finished run and Optuna's answer
    (Tune tells the searcher before its callbacks)."""

    def __init__(self, store, workspace: str | Path):
        self.store, self.workspace = store, workspace

    def on_trial_start(self, iteration, trials, trial, **info):
        save_or_say(self.store, self.workspace)  # the searcher's new trial: a restored Tune run may name it

    def on_trial_complete(self, iteration, trials, trial, **info):
        save_or_say(self.store, self.workspace)

    def on_trial_error(self, iteration, trials, trial, **info):
        save_or_say(self.store, self.workspace)


def _download_run(trial, local: Path) -> bool:
    """The trial's `run/` folder from the sweep's storage (Tune syncs it there with each checkpoint), without the
    generator checkpoints, which are not artifacts."""
    from mate.storage import Storage

    if getattr(trial, "storage", None) is None:
        return False
    run = Storage.on(trial.storage.storage_filesystem, f"{trial.storage.trial_fs_path}/run")
    wanted = [rel for rel in run.list_files("") if rel.split("/")[0] in (*ARTIFACT_FILES, *ARTIFACT_DIRS)]
    for rel in wanted:
        run.download(rel, local / rel)
    return bool(wanted)


def _error_of(trial) -> str:
    """The exception line of the trial's error (Tune keeps the whole traceback in error.txt)."""
    path = getattr(trial, "error_file", None)
    text = Path(path).read_text() if path and Path(path).is_file() else str(getattr(trial, "error_msg", "") or "")
    lines = [x for x in text.strip().splitlines() if x.strip()]
    errors = [x for x in lines if "Error" in x.split(":")[0] or "Exception" in x.split(":")[0]]
    return (errors[-1] if errors else (lines[-1] if lines else "unknown error"))[:500]
