"""The platform's answers end to end on `tiny`: real trials on a local Ray, a knob planted to matter
(`debug.val_offset`, added to every val figure) beside one without effect (`align.sigma_scale` with the alignment
off). A grid over seeds and a TPE search, each read back by `mate report` from MLflow (and the search's Optuna study);
the search's best config re-runs over replicate seeds (`rerun`) as children of the same parent, and calling the
finished search again runs nothing twice."""

from __future__ import annotations

import contextlib
import io
import re

import optuna
import pytest

from mate.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # two real tiny sweeps in one module fixture

GRID = """
name: planted-grid
profile: tiny
constants: {align.enabled: false}
grid:
  debug.val_offset: [0.0, 0.5]
  align.sigma_scale: [1.0, 2.0]
seeds: [0, 1]
objective: {metric: val/eval/r_precision_top3, mode: max}
budget: {max_epochs: 1, cpus_per_trial: 1, max_concurrent: 2}
"""
SEARCH = """
name: planted-search
profile: tiny
constants: {align.enabled: false}
search:
  debug.val_offset: {uniform: [0.0, 1.0]}
  align.sigma_scale: {loguniform: [0.25, 4.0]}
objective: {metric: val/eval/r_precision_top3, mode: max}
budget: {num_samples: 10, max_epochs: 1, grace_period: 1, cpus_per_trial: 1, max_concurrent: 2}
rerun: {top: 1, seeds: [7, 8]}
"""


@pytest.fixture(scope="module")
def swept(tiny_corpus, trial_ws, tmp_path_factory):
    import ray
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{trial_ws / 'mlflow.db'}")

    def children():
        exp = client.get_experiment_by_name("planted-search")
        return [r for r in client.search_runs([exp.experiment_id]) if "mlflow.parentRunId" in r.data.tags]

    runs = {}
    root = tmp_path_factory.mktemp("planted")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    mp.chdir(root)
    try:
        for name, text, cmd in (("grid", GRID, "ablate"), ("search", SEARCH, "sweep")):
            (root / f"{name}.yaml").write_text(text)
            argv = [cmd, str(root / f"{name}.yaml"), "--workspace", str(trial_ws), "--data", str(tiny_corpus),
                    "--quiet"]
            assert main(argv) == 0
            if name == "search":
                runs["first"] = children()
                assert main(argv) == 0  # finished, replicates included: nothing runs again
                runs["second"] = children()
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                assert main(["report", f"planted-{name}", "--workspace", str(trial_ws), "--out", str(root / name)]) == 0
            (root / name / "printed.txt").write_text(printed.getvalue())
    finally:
        ray.shutdown()
        mp.undo()
    return {"ws": trial_ws, "root": root, **runs}


def _knob_rows(md: str) -> dict[str, dict[str, str]]:
    block = md.split("## Which knobs matter", 1)[1].split("\n## ", 1)[0]
    block = block.split("The same test on the test figures", 1)[0]  # the objective's table
    lines = [x for x in block.splitlines() if x.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    return {r[1] if head[0] == "objective" else r[0]: dict(zip(head, r))
            for r in ([c.strip() for c in x.strip("|").split("|")] for x in lines[2:])}


def test_grid_report_finds_the_planted_knob_and_not_the_inert_one(swept):
    rows = _knob_rows((swept["root"] / "grid" / "report.md").read_text())
    assert rows["debug.val_offset"]["verdict"].startswith("matters")
    assert rows["align.sigma_scale"]["verdict"] == "within seed noise"
    assert float(rows["debug.val_offset"]["spread of means"]) == pytest.approx(0.5)
    assert rows["debug.val_offset"]["design"] == "additive over the grid, blocked by seed"
    # the sweep's own closing table says the same
    closing = (swept["ws"] / "sweeps" / "planted-grid" / "ablation.md").read_text()
    assert re.search(r"\| debug\.val_offset \|.*\| matters", closing)
    assert re.search(r"\| align\.sigma_scale \|.*\| within seed noise", closing)
    assert re.search(r"The same test on the test figures.*\n(.*\n)*\| debug\.val_offset \| F=0, p=1,", closing)
    printed = (swept["root"] / "grid" / "printed.txt").read_text()  # `mate report` prints the tests too
    assert re.search(r"\| debug\.val_offset \|.*\| inf \(1, 4\) \|.*\| matters", printed)
    # the same test on the test figures: the planted offset touches only val figures, so on test it is nothing
    md = (swept["root"] / "grid" / "report.md").read_text()
    block = md.split("The same test on the test figures", 1)[1].split("\n## ", 1)[0]
    lines = [x for x in block.splitlines() if x.startswith("|")]
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    row = next(x for x in lines if "debug.val_offset" in x)
    planted = dict(zip(head, (c.strip() for c in row.strip("|").split("|"))))
    assert {"eval/r_precision_top3", "eval/fid"} <= set(head)
    assert all(planted[f].startswith("F=0, p=1,") for f in head[1:] if planted[f] != "-"), planted
    png = swept["root"] / "grid" / "img" / "ablation_debug.val_offset.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_search_report_judges_optunas_importances_against_shuffles(swept):
    study = optuna.load_study(study_name="planted-search", storage=f"sqlite:///{swept['ws'] / 'optuna.db'}")
    assert study.metric_names == ["val/eval/r_precision_top3"]  # named for optuna-dashboard, not "Objective 0"
    rows = _knob_rows((swept["root"] / "search" / "report.md").read_text())
    assert rows["debug.val_offset"]["verdict"].startswith("beyond noise")
    assert rows["align.sigma_scale"]["verdict"].startswith("within noise")
    share = {k: float(r["importance (fANOVA)"]) for k, r in rows.items()}
    assert share["debug.val_offset"] > share["align.sigma_scale"]
    assert (swept["root"] / "search" / "img" / "importances.png").is_file()
    assert re.search(r"\| debug\.val_offset \|.*beyond noise", (swept["root"] / "search" / "printed.txt").read_text())
    closing = (swept["ws"] / "sweeps" / "planted-search" / "importance.md").read_text()
    assert re.search(r"\| debug\.val_offset \|.*beyond noise", closing)


def test_the_best_config_reruns_over_the_replicate_seeds_as_children_of_the_same_parent(swept):
    runs = swept["first"]
    search = [r for r in runs if "mate.rerun_of" not in r.data.tags]
    reps = [r for r in runs if "mate.rerun_of" in r.data.tags]
    assert len(search) == 10 and len(reps) == 2
    assert len({r.data.tags["mlflow.parentRunId"] for r in runs}) == 1
    objective = "val/eval/r_precision_top3"
    best = max(search, key=lambda r: r.data.metrics[objective])
    assert {r.data.tags["mate.rerun_of"] for r in reps} == {best.data.tags["trial_id"]}
    assert sorted(r.data.params["seed"] for r in reps) == ["7", "8"]
    for r in reps:  # the same config, only the seed differs
        for key in ("debug.val_offset", "align.sigma_scale"):
            assert r.data.params[key] == best.data.params[key]
        assert r.info.status == "FINISHED" and objective in r.data.metrics
    assert len(swept["second"]) == 12  # the second call ran nothing again


def test_the_closing_table_and_the_report_show_the_replicates_interval(swept):
    closing = (swept["ws"] / "sweeps" / "planted-search" / "replicates.md").read_text()
    assert re.search(r"\(search\) \| 1 \| ", closing)
    assert re.search(r"\(replicates\) \| 2 of 2 \| 7, 8 \| \d\.\d{3} ± \d\.\d{3} \|", closing)
    md = (swept["root"] / "search" / "report.md").read_text()
    block = md.split("## Replicates of the best configs", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"\(replicates\) \| 2 of 2 \| 7, 8 \| \d\.\d{3} ± \d\.\d{3} \|", block)
