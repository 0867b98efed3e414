"""`mate sweep` on a real local Ray with a tiny TPE space: trials share the prepared evaluators, Optuna's study and
MLflow's parent/child runs hold what happened, best.yaml re-runs the best trial, a second call with more samples
extends the same study and parent run, and a changed space is refused."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import optuna
import pytest
import yaml

from mate.cli import main
from tests.sweep.conftest import GEN_LR, SIGMA

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)

BUDGET = {"num_samples": 2, "max_epochs": 2, "max_concurrent": 2}


@pytest.fixture(scope="module")
def sweep(tiny_corpus, trial_ws, tmp_path_factory, tiny_space):
    import ray

    root = tmp_path_factory.mktemp("sweep")
    space, cwd = root / "tiny.yaml", root / "cwd"
    tiny_space(space, "tinysweep", params={**SIGMA, **GEN_LR}, **BUDGET)
    cwd.mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    mp.chdir(cwd)
    argv = ["sweep", str(space), "--workspace", str(trial_ws), "--data", str(tiny_corpus), "--quiet"]
    try:
        assert main(argv) == 0
        first = _state(trial_ws)
        assert main([*argv, "--num-samples", "3"]) == 0  # extends: one more trial on the same study
        second = _state(trial_ws)
    finally:
        ray.shutdown()
        mp.undo()
    return {"ws": trial_ws, "space": space, "cwd": cwd, "argv": argv, "first": first, "second": second}


def _state(ws):
    from mlflow.tracking import MlflowClient

    study = optuna.load_study(study_name="tinysweep", storage=f"sqlite:///{ws / 'optuna.db'}")
    client = MlflowClient(f"sqlite:///{ws / 'mlflow.db'}")
    exp = client.get_experiment_by_name("tinysweep")
    runs = client.search_runs([exp.experiment_id])
    return {"trials": [(t.state.name, t.params) for t in study.trials],
            "parents": [r for r in runs if r.data.tags.get("mate.role") == "parent"],
            "children": [r for r in runs if "mlflow.parentRunId" in r.data.tags], "client": client}


def test_trials_land_in_optuna_and_in_mlflow_child_runs(sweep):
    first = sweep["first"]
    assert [s for s, _ in first["trials"]] == ["COMPLETE", "COMPLETE"]
    assert len(first["parents"]) == 1 and len(first["children"]) == 2
    parent = first["parents"][0].info.run_id
    client = first["client"]
    for child in first["children"]:
        assert child.data.tags["mlflow.parentRunId"] == parent and child.info.status == "FINISHED"
        p = child.data.params
        assert p["profile"] == "tiny" and p["gen.epochs"] == "2" and len(p["evaluator.sha"]) == 64
        assert (float(p["align.sigma_scale"]), float(p["gen.lr"])) in {
            (t["align.sigma_scale"], t["gen.lr"]) for _, t in first["trials"]}  # the values TPE chose
        steps = [m.step for m in client.get_metric_history(child.info.run_id, "val/eval/r_precision_top3")]
        assert sorted(set(steps)) == [1, 2]
        assert "eval/fid" in child.data.metrics  # the last report carries the test figures
        assert {"metrics.json", "run.json", "aligned_rows.safetensors"} <= {
            a.path for a in client.list_artifacts(child.info.run_id)}
    for proc in (sweep["ws"] / "sweeps" / "tinysweep" / "tune").glob("run-*/*/run/process.json"):
        # trials never open MLflow (docs/architecture.md §8)
        assert json.loads(proc.read_text())["mlflow_imported"] is False
        assert json.loads(proc.read_text())["niceness"] == os.nice(0)  # a local sweep's trials are not niced
    assert len(list((sweep["ws"] / "sweeps" / "tinysweep" / "tune").glob("run-*/*/run/process.json"))) == 3
    shas = {c.data.params["evaluator.sha"] for c in first["children"]}
    assert len(shas) == 1  # every trial scored by the one prepared evaluator
    assert {"best.yaml", "results.csv"} <= {a.path for a in client.list_artifacts(parent)}


def test_results_and_best_yaml_name_the_best_trial(sweep):
    sweep_dir = sweep["ws"] / "sweeps" / "tinysweep"
    rows = list(csv.DictReader(open(sweep_dir / "results.csv")))
    assert len(rows) == 3 and all(r["status"] == "finished" for r in rows)
    best = yaml.safe_load((sweep_dir / "best.yaml").read_text())
    values = [float(r["val/eval/r_precision_top3"]) for r in rows]
    assert best["value"] == pytest.approx(max(values))
    assert best["command"].startswith("mate train --config") and best["config"]["profile"] == "tiny"
    run = json.loads((sweep_dir.parent.parent / "sweeps" / "tinysweep" / "space.json").read_text())
    assert run["profile"] == "tiny"


def test_more_samples_extend_the_same_study_and_parent_run(sweep):
    first, second = sweep["first"], sweep["second"]
    assert len(second["trials"]) == 3 and second["trials"][:2] == first["trials"]
    assert [p.info.run_id for p in second["parents"]] == [p.info.run_id for p in first["parents"]]
    assert len(second["children"]) == 3
    assert sorted(p.name for p in (sweep["ws"] / "sweeps" / "tinysweep" / "tune").glob("run-*")) == ["run-1", "run-2"]
    assert list(sweep["cwd"].iterdir()) == []  # nothing written where the command ran


def test_a_changed_space_is_refused_and_dry_run_runs_nothing(sweep, capsys, tiny_space):
    changed = sweep["space"].with_name("changed.yaml")
    tiny_space(changed, "tinysweep", params={"align.sigma_scale": {"loguniform": [0.5, 4.0]}, **GEN_LR}, **BUDGET)
    argv = [a if a != str(sweep["space"]) else str(changed) for a in sweep["argv"]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "align.sigma_scale" in err and "0.25" in err and "--name" in err
    assert main(["sweep", str(changed), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "align.sigma_scale" in out and "CPU-hours" in out


def test_mate_train_on_best_yaml_reproduces_the_best_trial(sweep, tmp_path):
    best_yaml = sweep["ws"] / "sweeps" / "tinysweep" / "best.yaml"
    best = yaml.safe_load(best_yaml.read_text())
    out = tmp_path / "again"
    assert main(["train", "--config", str(best_yaml), "--workspace", str(sweep["ws"]), "--out", str(out), "--quiet",
                 "--previews", "0", "--threads", "1"]) == 0
    again = json.loads((out / "metrics.json").read_text())
    # the tolerance of docs/architecture.md §6
    assert again[best["metric"]] == pytest.approx(best["value"], rel=0.01, abs=0.01)
    trial = json.loads((Path(best["run_dir"]) / "metrics.json").read_text())
    for k in ("eval/fid", "eval/r_precision_top3", "gen/loss", "probe/foot_skate", "val/eval/fid"):
        assert again[k] == pytest.approx(trial[k], rel=0.01, abs=0.01), k
    assert json.loads((out / "run.json").read_text())["data_dir"] == json.loads(
        (Path(best["run_dir"]) / "run.json").read_text())["data_dir"]  # no --data: the saved config's
