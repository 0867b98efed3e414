"""`mate ui` serves the workspace's MLflow store and Optuna study on 127.0.0.1: a test finds a run through MLflow's
REST API and the study through optuna-dashboard's API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

from mate.localnet import free_port

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


def _get(url: str, deadline: float):
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return json.loads(r.read())
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def test_ui_serves_mlflow_and_optuna_on_localhost(tmp_path):
    from mate.tracking import Tracker, default_uri

    ws = tmp_path / "ws"
    tracker = Tracker(default_uri(ws), ws)
    exp = tracker.experiment("uisweep")
    run = tracker.run(exp, {"sweep": "uisweep", "trial_id": "t1"})
    tracker.log_metrics(run, {"val/eval/fid": 1.5}, step=1)
    study = optuna.create_study(study_name="uisweep", storage=f"sqlite:///{ws / 'optuna.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    mp, op = free_port(), free_port()
    proc = subprocess.Popen([sys.executable, "-m", "mate", "ui", "--workspace", str(ws), "--port", str(mp),
                             "--optuna-port", str(op)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True, text=True)
    try:
        deadline = time.time() + 90
        found = _get(f"http://127.0.0.1:{mp}/api/2.0/mlflow/experiments/get-by-name?experiment_name=uisweep",
                     deadline)
        exp_id = found["experiment"]["experiment_id"]
        req = urllib.request.Request(f"http://127.0.0.1:{mp}/api/2.0/mlflow/runs/search",
                                     data=json.dumps({"experiment_ids": [exp_id]}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            runs = json.loads(r.read())["runs"]
        assert [x["info"]["run_id"] for x in runs] == [run]
        studies = _get(f"http://127.0.0.1:{op}/api/studies", deadline)
        assert [s["study_name"] for s in studies["study_summaries"]] == ["uisweep"]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.communicate(timeout=30)[0]
    assert f"http://127.0.0.1:{mp}" in out and f"http://127.0.0.1:{op}" in out
