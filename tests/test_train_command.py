"""`mate train` and `mate sample` on the tiny corpus: a run killed mid-way continues from its checkpoint, `--config`
re-makes a saved run's config, and `--tracking-uri` leaves one MLflow run with its params, per-epoch metrics, artifacts
and tags and writes nothing outside the workspace and --out."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mate.cli import main
from mate.generate.cleanup import lock_feet

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def killed_and_resumed(tiny_corpus, tmp_path_factory, trial_ws):
    """`mate train` that fails at generator epoch 2 (after epoch 1's checkpoint), then the same command again."""
    root = tmp_path_factory.mktemp("train_cli")
    ws, out, cwd = trial_ws, root / "out", root / "cwd"
    cwd.mkdir()
    uri = f"sqlite:///{ws}/mlflow.db"
    argv = ["train", "--data", str(tiny_corpus), "--workspace", str(ws), "--out", str(out), "--quiet",
            "--tracking-uri", uri, "--previews", "1", "profile=tiny", "debug.fail_epoch=2", "gen.epochs=3"]
    mp = pytest.MonkeyPatch()
    mp.chdir(cwd)
    try:
        with pytest.raises(RuntimeError, match="debug.fail_epoch=2"):
            main(argv)
        interrupted = not (out / "metrics.json").exists() and (out / "checkpoint" / "gen.pt").is_file()
        assert main(argv) == 0
    finally:
        mp.undo()
    return {"root": root, "ws": ws, "out": out, "cwd": cwd, "uri": uri, "interrupted": interrupted}


def test_a_killed_train_resumes_from_its_checkpoint(killed_and_resumed, capsys):
    """The same command again continues the killed run (the injected fault fires only in a run that did not resume:
    a fresh start would fail again) and trains only the epochs its checkpoint lacked. That the resumed figures equal
    an uninterrupted run's is test_pipeline.py's and test_pipeline_masked.py's; that a saved config re-made with
    `--config` reproduces its run is tests/sweep/test_sweep.py's best.yaml test."""
    from mate.pipeline import read_history

    r = killed_and_resumed
    assert r["interrupted"]
    resumed = json.loads((r["out"] / "metrics.json").read_text())
    assert resumed["gen/epoch"] == 3
    assert [int(x["gen/epoch"]) for x in read_history(r["out"])] == [1, 2, 3]  # epoch 1 once: not trained again
    # --config with the run folder (its run.json) re-makes exactly the run's config, --data included: the command
    # finds its own finished run at that --out, not a run with another config
    capsys.readouterr()
    assert main(["train", "--config", str(r["out"]), "--workspace", str(r["ws"]), "--out", str(r["out"]),
                 "--quiet"]) == 2
    assert "holds a finished run" in capsys.readouterr().err


def test_the_same_out_with_another_config_is_refused(killed_and_resumed, tiny_corpus, capsys):
    r = killed_and_resumed
    assert main(["train", "--data", str(tiny_corpus), "--workspace", str(r["ws"]), "--out", str(r["out"]),
                 "profile=tiny", "gen.epochs=5"]) == 2
    assert "another config" in capsys.readouterr().err


def test_tracking_leaves_one_run_with_params_metrics_artifacts_and_tags(killed_and_resumed):
    from mlflow.tracking import MlflowClient

    r = killed_and_resumed
    client = MlflowClient(r["uri"])
    exp = client.get_experiment_by_name("mate-train")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1  # the resumed command continued the killed one's run
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["profile"] == "tiny" and run.data.params["gen.epochs"] == "3"
    history = client.get_metric_history(run.info.run_id, "gen/loss")
    assert sorted({m.step for m in history}) == [1, 2, 3]
    assert "eval/fid" in run.data.metrics and "val/eval/r_precision_top3" in run.data.metrics
    tags = run.data.tags
    assert tags["profile"] == "tiny" and len(tags["evaluator_sha"]) == 64 and tags["dataset_hash"]
    assert "git_sha" in tags
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"metrics.json", "run.json", "generator.pt", "aligned_rows.safetensors", "previews"} <= names
    assert list(r["cwd"].iterdir()) == []  # nothing written where the command ran
    arts = r["ws"] / "mlartifacts"
    assert any(p.name == "metrics.json" for p in arts.rglob("*"))


def test_previews_and_sample(killed_and_resumed, capsys):
    r = killed_and_resumed
    gifs = sorted(p.name for p in (r["out"] / "previews").glob("*.gif"))
    assert "prompt0.gif" in gifs and any(g.startswith("pair-") for g in gifs)
    npy = r["root"] / "s.npy"
    assert main(["sample", "--run", str(r["out"]), "--text", "a person turns clockwise", "--length", "24",
                 "--n", "2", "--out", str(npy)]) == 0
    x = np.load(npy)
    assert x.shape == (2, 24, 263) and np.isfinite(x).all() and not np.allclose(x[0], x[1])
    assert main(["sample", "--run", str(r["out"]), "--text", "a person turns clockwise", "--length", "24",
                 "--n", "2", "--out", str(r["root"] / "s2.npy")]) == 0
    assert np.array_equal(np.load(r["root"] / "s2.npy"), x)  # a seed gives the same motion
    locked = r["root"] / "locked.npy"
    assert main(["sample", "--run", str(r["out"]), "--text", "a person turns clockwise", "--length", "24",
                 "--n", "2", "--foot-lock", "--smooth", "1", "--out", str(locked)]) == 0
    y = np.load(locked)
    assert y.shape == x.shape and not np.allclose(y, x)
    assert np.array_equal(y[0], lock_feet(x[0], smooth=1.0))  # the same noise, then the run's clean-up
    assert main(["sample", "--run", str(r["out"]), "--text", "x", "--smooth", "-1", "--out", str(locked)]) == 2
    assert "gen.smooth" in capsys.readouterr().err
    gif = r["root"] / "s.gif"
    assert main(["sample", "--run", str(r["out"]), "--text", "a person waves", "--length", "24",
                 "--out", str(gif)]) == 0
    assert gif.stat().st_size > 1000
    assert main(["sample", "--run", str(r["out"]), "--text", "x", "--out", str(r["root"] / "s.txt")]) == 2
    assert main(["sample", "--run", str(r["root"]), "--text", "x", "--out", str(npy)]) == 2
    err = capsys.readouterr().err
    assert ".gif" in err and "not a finished run" in err
