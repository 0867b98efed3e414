"""`rerun` on `tiny`: after a TPE search, its best config runs again over the replicate seeds as child runs of the same
MLflow parent, the sweep's closing table and `mate report` put their mean and interval beside the single search run,
and calling the finished sweep again runs nothing twice."""

from __future__ import annotations

import re

import pytest

from mate.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SPACE = """
name: rerun-tiny
profile: tiny
search:
  align.sigma_scale: {loguniform: [0.25, 4.0]}
  gen.lr: {loguniform: [1.0e-4, 1.0e-2]}
objective: {metric: val/eval/r_precision_top3, mode: max}
budget: {num_samples: 3, max_epochs: 1, grace_period: 1, cpus_per_trial: 1, max_concurrent: 2}
rerun: {top: 1, seeds: [7, 8]}
"""


@pytest.fixture(scope="module")
def swept(tiny_corpus, trial_ws, tmp_path_factory):
    import ray
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("rerun")
    (root / "space.yaml").write_text(SPACE)
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    mp.chdir(root)
    argv = ["sweep", str(root / "space.yaml"), "--workspace", str(trial_ws), "--data", str(tiny_corpus), "--quiet"]
    client = MlflowClient(f"sqlite:///{trial_ws / 'mlflow.db'}")

    def children():
        exp = client.get_experiment_by_name("rerun-tiny")
        return [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]

    try:
        assert main(argv) == 0
        first = children()
        assert main(argv) == 0  # finished: nothing runs again
        second = children()
        assert main(["report", "rerun-tiny", "--workspace", str(trial_ws), "--out", str(root / "report")]) == 0
    finally:
        ray.shutdown()
        mp.undo()
    return {"ws": trial_ws, "root": root, "first": first, "second": second}


def test_the_best_config_reruns_over_the_replicate_seeds_as_children_of_the_same_parent(swept):
    runs = swept["first"]
    search = [r for r in runs if "mate.rerun_of" not in r.data.tags]
    reps = [r for r in runs if "mate.rerun_of" in r.data.tags]
    assert len(search) == 3 and len(reps) == 2
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs}) == 1
    objective = "val/eval/r_precision_top3"
    best = max(search, key=lambda r: r.data.metrics[objective])
    assert {r.data.tags["mate.rerun_of"] for r in reps} == {best.data.tags["trial_id"]}
    assert sorted(r.data.params["seed"] for r in reps) == ["7", "8"]
    for r in reps:  # the same config, only the seed differs
        for key in ("align.sigma_scale", "gen.lr"):
            assert r.data.params[key] == best.data.params[key]
        assert r.info.status == "FINISHED" and objective in r.data.metrics
    assert len(swept["second"]) == 5  # the second call ran nothing again


def test_the_closing_table_and_the_report_show_the_replicates_interval(swept):
    closing = (swept["ws"] / "sweeps" / "rerun-tiny" / "replicates.md").read_text()
    assert re.search(r"\(search\) \| 1 \| ", closing)
    assert re.search(r"\(replicates\) \| 2 of 2 \| 7, 8 \| \d\.\d{3} ± \d\.\d{3} \|", closing)
    md = (swept["root"] / "report" / "report.md").read_text()
    block = md.split("## Replicates of the best configs", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\(replicates\) \| 2 of 2 \| 7, 8 \| \d\.\d{3} ± \d\.\d{3} \|", block)
    assert "Which knobs matter" in md and "shuffled" in md  # the search still gets Optuna's importances
