"""A grid with a trial that raises and one whose loss becomes NaN: both end failed with their error in Tune's
results and in MLflow, and the healthy trial finishes. (No retries here: `max_failures: 0` keeps the test short; the
kill-and-resume test covers continuing from a checkpoint.)"""

from __future__ import annotations

import csv

import pytest

from mate.cli import main

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


def test_failing_and_nan_trials_are_failed_with_their_error_and_the_sweep_goes_on(tiny_corpus, trial_ws, tmp_path,
                                                                                    monkeypatch, tiny_space):
    import ray
    from mlflow.tracking import MlflowClient

    space = tmp_path / "faults.yaml"
    tiny_space(space, "faults", points=[{}, {"debug.fail_epoch": 1}, {"debug.nan_epoch": 2}],
               max_epochs=2, max_concurrent=2, max_failures=0)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    try:
        assert main(["sweep", str(space), "--workspace", str(trial_ws), "--data", str(tiny_corpus), "--quiet"]) == 0
    finally:
        ray.shutdown()
    rows = {(r["debug.fail_epoch"], r["debug.nan_epoch"]): r["status"]
            for r in csv.DictReader(open(trial_ws / "sweeps" / "faults" / "results.csv"))}
    assert sorted(rows.values()) == ["failed", "failed", "finished"], rows
    client = MlflowClient(f"sqlite:///{trial_ws / 'mlflow.db'}")
    exp = client.get_experiment_by_name("faults")
    children = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
    by_status = sorted((r.info.status, r.data.tags.get("mate.error", "")) for r in children)
    assert [s for s, _ in by_status] == ["FAILED", "FAILED", "FINISHED"]
    errors = " | ".join(e for _, e in by_status)
    assert "debug.fail_epoch=1" in errors and "FloatingPointError" in errors and "debug.nan_epoch" in errors
