"""A sweep SIGKILLed mid-way (driver, Ray and trial processes together) and started again: it continues from Tune's
saved state, every trial finishes exactly once, and nothing is left RUNNING in MLflow or Optuna; a
limit the restored run cannot take (`--max-concurrent`) is named, not ignored."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


def _sweep(space, ws, corpus, log, *extra):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "mate", "sweep", str(space), "--workspace", str(ws), "--data", str(corpus), "--quiet",
           *extra]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                            cwd=str(space.parent))


def test_a_killed_sweep_resumes_and_finishes_every_trial_once(tiny_corpus, trial_ws, tmp_path, tiny_space):
    from mlflow.tracking import MlflowClient

    space = tmp_path / "killme.yaml"
    tiny_space(space, "killme", num_samples=3, max_epochs=3)
    tune_dir = trial_ws / "sweeps" / "killme" / "tune"
    with open(tmp_path / "first.log", "w") as log:
        proc = _sweep(space, trial_ws, tiny_corpus, log)
        deadline = time.time() + 400
        while time.time() < deadline and proc.poll() is None:
            if any(tune_dir.glob("run-1/*/checkpoint_000001")):  # a trial is in its second epoch or later
                break
            time.sleep(0.5)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        os.killpg(proc.pid, signal.SIGKILL)  # the driver, its local Ray and the trial processes
        proc.wait()
    time.sleep(2)
    with open(tmp_path / "second.log", "w") as log:
        again = _sweep(space, trial_ws, tiny_corpus, log, "--max-concurrent", "2")
        assert again.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()[-3000:]
    second = (tmp_path / "second.log").read_text()
    assert "restoring run-1" in second
    # Tune restores the run's concurrency limit with its searcher: the flag cannot reach it, and the sweep says so
    assert "run-1 keeps the limits it started with, as Tune restores them: max_concurrent 1 (asked: 2)" in second

    study = optuna.load_study(study_name="killme", storage=f"sqlite:///{trial_ws / 'optuna.db'}")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states, states
    client = MlflowClient(f"sqlite:///{trial_ws / 'mlflow.db'}")
    exp = client.get_experiment_by_name("killme")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = [r.data.tags["trial_id"] for r in children if r.info.status == "FINISHED"]
    assert len(finished) == 3 and len(set(finished)) == 3  # every trial once, no duplicate run
    for r in children:
        if r.info.status == "FINISHED":
            epochs = client.get_metric_history(r.info.run_id, "gen/loss")
            assert sorted({m.step for m in epochs}) == [1, 2, 3]  # the resumed trial kept its run and its curve
