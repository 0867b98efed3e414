"""mate.tracking against a real MLflow SQLite store in a temporary workspace (no mocks), read back with MlflowClient.

One store is shared by the module (MLflow's first SQLite init runs its migrations: seconds), and the whole module runs
with an empty folder as the current directory, so that a stray `./mlruns` or `./mlartifacts` would show.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pytest
from mlflow.tracking import MlflowClient

from mate.tracking import (
    CHANGED_PARAMS_TAG,
    MAX_PARAM_VAL_LENGTH,
    PARENT_TAG,
    Tracker,
    artifact_root,
    default_uri,
    track_run,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """(tracker, workspace, cwd): a workspace with its MLflow store; the module runs inside the empty `cwd`."""
    root = tmp_path_factory.mktemp("tracking")
    workspace, cwd = root / "ws", root / "cwd"
    cwd.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        yield Tracker(default_uri(workspace), workspace), workspace, cwd


def reader(tracker: Tracker) -> MlflowClient:
    """A fresh client on the same store: what we read back is what is stored, not a cached object."""
    return MlflowClient(tracking_uri=tracker.uri)


def local_path(uri: str) -> Path:
    return Path(url2pathname(urlparse(uri).path))


def test_import_is_cheap():
    code = ("import sys, mate.tracking; "
            "print(sorted(m for m in ('mlflow', 'sqlalchemy', 'mate.config') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_uris(tmp_path):
    assert default_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert default_uri(tmp_path).startswith("sqlite:////")  # four slashes: an absolute path
    assert artifact_root(tmp_path) == tmp_path.resolve() / "mlartifacts"


def test_experiment_is_created_once_with_artifacts_in_workspace(store):
    tracker, workspace, _ = store
    exp = tracker.experiment("exp/one")
    assert tracker.experiment("exp/one") == exp
    assert Tracker(tracker.uri, workspace).experiment("exp/one") == exp  # another client reuses it too
    location = local_path(reader(tracker).get_experiment(exp).artifact_location)
    assert location.parent == artifact_root(workspace)
    assert location.name.startswith("exp_one-")  # a safe folder name for a name with a slash
    # without a workspace, a sqlite store keeps its artifacts beside the database
    assert local_path(Tracker(tracker.uri).artifact_location("plain")) == artifact_root(workspace) / "plain"


def test_deleted_experiment_is_one_clear_error(store):
    tracker, _, _ = store
    exp = tracker.experiment("gone")
    reader(tracker).delete_experiment(exp)
    with pytest.raises(RuntimeError, match="'gone' .* is deleted: restore it"):
        tracker.experiment("gone")


def test_params_metrics_tags_round_trip(store):
    tracker, _, _ = store
    exp = tracker.experiment("roundtrip")
    run = tracker.run(exp, {"sweep": "s1", "trial_id": "t0"}, name="trial-0")
    config = {"profile": "tiny", "seed": 3, "align.lr": 1e-3, "align": {"w_loc": 0.5}, "data.path": None,
              "align.enabled": True, "eval.repeats": [1, 2]}
    assert tracker.log_params(run, config) == {}
    for step in range(3):
        skipped = tracker.log_metrics(run, {"val/eval/fid": 10.0 - step, "align/loss": 1.0 / (step + 1),
                                            "gen/epoch": step}, step=step)
        assert skipped == []
    tracker.set_tags(run, {"status_note": "ok", "best": 1})

    got = reader(tracker).get_run(run)
    assert got.info.run_name == "trial-0"
    assert got.data.params == {"profile": "tiny", "seed": "3", "align.lr": "0.001", "align.w_loc": "0.5",
                               "data.path": "None", "align.enabled": "True", "eval.repeats": "[1, 2]"}
    assert got.data.metrics == {"val/eval/fid": 8.0, "align/loss": pytest.approx(1 / 3), "gen/epoch": 2.0}
    assert got.data.tags["sweep"] == "s1" and got.data.tags["trial_id"] == "t0"
    assert got.data.tags["status_note"] == "ok" and got.data.tags["best"] == "1"
    history = reader(tracker).get_metric_history(run, "val/eval/fid")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 10.0), (1, 9.0), (2, 8.0)]


def test_many_params_and_metrics_are_batched(store):
    tracker, _, _ = store
    run = tracker.run(tracker.experiment("batched"), {})
    tracker.log_params(run, {f"p.k{i}": i for i in range(250)})  # > 100 params: three batches
    tracker.log_metrics(run, {f"m/k{i}": float(i) for i in range(1200)}, step=0)  # > 1000 metrics: two batches
    got = reader(tracker).get_run(run).data
    assert len(got.params) == 250 and got.params["p.k249"] == "249"
    assert len(got.metrics) == 1200 and got.metrics["m/k1199"] == 1199.0


def test_non_finite_and_non_numeric_metrics_are_skipped(store):
    tracker, _, _ = store
    run = tracker.run(tracker.experiment("skips"), {})
    np = pytest.importorskip("numpy")
    skipped = tracker.log_metrics(run, {"a/nan": math.nan, "a/inf": -math.inf, "a/text": "x", "a/none": None,
                                        "a/np": np.float32(2.5), "a/ok": 1, "bad name!": 1.0}, step=4)
    assert sorted(skipped) == ["a/inf", "a/nan", "a/none", "a/text", "bad name!"]
    got = reader(tracker).get_run(run).data.metrics
    assert got == {"a/np": 2.5, "a/ok": 1.0}
    assert reader(tracker).get_metric_history(run, "a/ok")[0].step == 4


def test_find_or_create_by_tags(store):
    tracker, _, _ = store
    exp = tracker.experiment("resume")
    parent = tracker.run(exp, {"sweep": "s", "kind": "parent"}, name="s")
    first = tracker.run(exp, {"sweep": "s", "trial_id": "a"}, parent_run_id=parent)
    assert tracker.run(exp, {"sweep": "s", "trial_id": "a"}, parent_run_id=parent) == first
    other = tracker.run(exp, {"sweep": "s", "trial_id": "b"}, parent_run_id=parent)
    assert other != first
    assert tracker.run(exp, {"sweep": "s2", "trial_id": "a"}) not in (first, other)  # another sweep
    for odd in ("it's \"odd\"", "C:\\runs\\x", "50% ü"):  # values left out of the filter: matched client-side
        made = tracker.run(exp, {"sweep": odd, "trial_id": "a"})
        assert tracker.run(exp, {"sweep": odd, "trial_id": "a"}) == made
        assert tracker.run(exp, {"sweep": odd, "trial_id": "b"}) != made
    assert tracker.run(exp, {}) != tracker.run(exp, {})  # no identity: always a new run

    client = reader(tracker)
    assert client.get_run(first).data.tags[PARENT_TAG] == parent
    assert client.get_run(other).data.tags[PARENT_TAG] == parent
    assert PARENT_TAG not in client.get_run(parent).data.tags
    children = client.search_runs([exp], filter_string=f"tags.`{PARENT_TAG}` = '{parent}'")
    assert {r.info.run_id for r in children} == {first, other}
    assert {r.run_id for r in tracker.find_runs(exp, {"sweep": "s"}, status="RUNNING")} == {parent, first, other}

    tracker.finish(first, "KILLED")  # the driver died; the resumed trial continues the same run
    assert client.get_run(first).info.status == "KILLED"
    assert tracker.run(exp, {"sweep": "s", "trial_id": "a"}) == first
    assert client.get_run(first).info.status == "RUNNING"
    for run_id, status in ((first, "FINISHED"), (other, "FAILED"), (parent, "KILLED")):
        tracker.finish(run_id, status)
        assert client.get_run(run_id).info.status == status
    with pytest.raises(ValueError, match="FINISHED"):
        tracker.finish(first, "DONE")


def test_changed_param_keeps_first_value_and_is_recorded(store):
    tracker, _, _ = store
    run = tracker.run(tracker.experiment("changed"), {"trial_id": "c"})
    tracker.log_params(run, {"gen.epochs": 4, "seed": 1})
    assert tracker.log_params(run, {"gen.epochs": 4, "seed": 1}) == {}  # the same values again: fine
    assert tracker.log_params(run, {"gen.epochs": 8, "seed": 1, "new.key": "x"}) == {"gen.epochs": ("4", "8")}
    got = reader(tracker).get_run(run).data
    assert got.params == {"gen.epochs": "4", "seed": "1", "new.key": "x"}
    assert '"gen.epochs": {"logged": "4", "new": "8"}' in got.tags[CHANGED_PARAMS_TAG]


def test_long_param_value_is_truncated(store):
    tracker, _, _ = store
    run = tracker.run(tracker.experiment("long"), {})
    tracker.log_params(run, {"prompt": "x" * 10_000, "short": "y"})
    tracker.log_params(run, {"prompt": "x" * 10_000})  # the same long value again does not count as a change
    value = reader(tracker).get_run(run).data.params["prompt"]
    assert len(value) == MAX_PARAM_VAL_LENGTH
    assert value.startswith("xxx") and value.endswith("[truncated, 10000 chars]")
    assert CHANGED_PARAMS_TAG not in reader(tracker).get_run(run).data.tags


def test_track_run_finishes_fails_and_kills(store):
    tracker, workspace, _ = store
    with track_run(tracker.uri, workspace, "train", run_name="ok", params={"seed": 0}, tags={"cmd": "train"}) as r:
        r.log_metrics({"gen/loss": 0.5}, step=0)
    with pytest.raises(RuntimeError, match="boom"), track_run(tracker.uri, workspace, "train", "bad") as failed:
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), track_run(tracker.uri, workspace, "train", "ctrl-c") as killed:
        raise KeyboardInterrupt
    client = reader(tracker)
    done = client.get_run(r.run_id)
    assert done.info.status == "FINISHED" and done.info.end_time is not None
    assert done.data.params == {"seed": "0"} and done.data.tags["cmd"] == "train"
    assert done.data.metrics == {"gen/loss": 0.5}
    assert client.get_run(failed.run_id).info.status == "FAILED"
    assert client.get_run(killed.run_id).info.status == "KILLED"
    assert len({r.run_id, failed.run_id, killed.run_id}) == 3


def test_nothing_written_outside_the_workspace(store, tmp_path):
    """Runs last: artifacts land under <workspace>/mlartifacts and the current directory stays empty."""
    tracker, workspace, cwd = store
    out = tmp_path / "trial"
    (out / "plots").mkdir(parents=True)
    (out / "metrics.json").write_text('{"eval/fid": 1.0}')
    (out / "plots" / "curve.txt").write_text("curve")
    (tmp_path / "best.yaml").write_text("seed: 0\n")

    with track_run(tracker.uri, workspace, "artifacts", run_name="a") as run:
        run.log_artifacts(out)
        run.log_artifacts(out, artifact_path="again")
        run.log_artifact(tmp_path / "best.yaml", artifact_path="sweep")

    client = reader(tracker)
    listed = {a.path for a in client.list_artifacts(run.run_id)}
    assert listed == {"metrics.json", "plots", "again", "sweep"}
    assert {a.path for a in client.list_artifacts(run.run_id, "plots")} == {"plots/curve.txt"}
    root = local_path(client.get_run(run.run_id).info.artifact_uri)
    assert root.is_relative_to(artifact_root(workspace))
    assert (root / "plots" / "curve.txt").read_text() == "curve"
    assert (root / "again" / "metrics.json").is_file() and (root / "sweep" / "best.yaml").is_file()
    assert sorted(p.name for p in workspace.iterdir()) == ["mlartifacts", "mlflow.db"]
    assert list(cwd.iterdir()) == []
    assert Path.cwd() == cwd
