"""A grid with a trial that raises and one whose loss becomes NaN: both end failed with their error in Tune's
results and in MLflow, and the healthy trial finishes. (No automatic retries: `max_failures: 0` keeps the test
short; the kill-and-resume test covers continuing from a checkpoint.) Called again, the finished grid runs nothing;
with `--retry-failed` it re-runs its failed trials in the same Tune run."""

from __future__ import annotations

import csv

import pytest

from mate.cli import main

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


def test_failing_and_nan_trials_are_failed_with_their_error_and_the_sweep_goes_on(tiny_corpus, trial_ws, tmp_path,
                                                                                    monkeypatch, tiny_space, capsys):
    import ray
    from mlflow.tracking import MlflowClient

    space = tmp_path / "faults.yaml"
    tiny_space(space, "faults", points=[{}, {"debug.fail_epoch": 1}, {"debug.nan_epoch": 2}],
               max_epochs=2, max_concurrent=2, max_failures=0)
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    argv = ["sweep", str(space), "--workspace", str(trial_ws), "--data", str(tiny_corpus), "--quiet"]
    client = MlflowClient(f"sqlite:///{trial_ws / 'mlflow.db'}")

    def statuses():
        rows = {(r["debug.fail_epoch"], r["debug.nan_epoch"]): r["status"]
                for r in csv.DictReader(open(trial_ws / "sweeps" / "faults" / "results.csv"))}
        exp = client.get_experiment_by_name("faults")
        children = [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]
        return rows, sorted((r.info.status, r.data.tags.get("mate.error", "")) for r in children)

    runs = trial_ws / "sweeps" / "faults" / "tune"
    try:
        assert main(argv) == 0
        rows, by_status = statuses()
        assert sorted(rows.values()) == ["failed", "failed", "finished"], rows
        assert [s for s, _ in by_status] == ["FAILED", "FAILED", "FINISHED"]
        errors = " | ".join(e for _, e in by_status)
        assert "debug.fail_epoch=1" in errors and "FloatingPointError" in errors and "debug.nan_epoch" in errors

        capsys.readouterr()
        assert main(argv) == 0  # finished: nothing runs again, nothing is added
        assert "nothing to run" in capsys.readouterr().out
        assert sorted(p.name for p in runs.glob("run-*")) == ["run-1"] and statuses() == (rows, by_status)

        assert main(argv + ["--retry-failed"]) == 0  # the failed two again, in the same Tune run
        again, by_status = statuses()
        assert sorted(p.name for p in runs.glob("run-*")) == ["run-1"] and len(by_status) == 3
        # the NaN trial had a checkpoint (epoch 1) and resumes past its fault; the other failed before any
        assert again == {("", ""): "finished", ("1", ""): "failed", ("", "2"): "finished"}, again
        assert [s for s, _ in by_status] == ["FAILED", "FINISHED", "FINISHED"]
        assert "debug.fail_epoch=1" in by_status[0][1]
        retried = [r for r in client.search_runs([client.get_experiment_by_name("faults").experiment_id])
                   if r.data.tags.get("mate.retried_after")]
        assert len(retried) == 1 and "debug.nan_epoch" in retried[0].data.tags["mate.retried_after"]
        assert "mate.error" not in retried[0].data.tags  # a finished run carries no error
    finally:
        ray.shutdown()
