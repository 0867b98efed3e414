"""A trial with the MoMask-style generator (gen.kind=masked) on the tiny corpus: the shared tokenizer, exact resume
after a kill, the tokenizer.sha pin, a NaN loss, and `mate sample` on the finished run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mate.config import resolve
from mate.pipeline import TokenizerShaMismatch, run_trial

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def cfg(tiny_corpus, **over):
    return resolve({"profile": "tiny", "data.dir": str(tiny_corpus), "gen.kind": "masked", "align.enabled": False,
                    **{k.replace("__", "."): v for k, v in over.items()}})


@pytest.fixture(scope="module")
def straight(tiny_corpus, trial_ws):
    reports = []
    out = trial_ws / "runs" / "masked-straight"
    metrics = run_trial(cfg(tiny_corpus), lambda m, c=None: reports.append(dict(m)), workspace=trial_ws, out=out,
                        log=lambda s: None)
    return metrics, reports, out


def test_a_masked_trial_reports_each_epoch_and_records_its_tokenizer(straight, tiny_corpus, trial_ws):
    metrics, reports, out = straight
    assert [int(m["gen/epoch"]) for m in reports] == [1, 2]
    assert {"gen/loss_base", "gen/loss_res", "gen/acc_base", "val/eval/fid"} <= set(reports[0])
    run = json.loads((out / "run.json").read_text())
    tok_dirs = list((trial_ws / "cache" / "tokenizers").iterdir())
    shas = [json.loads((d / "meta.json").read_text())["sha"] for d in tok_dirs if (d / "meta.json").is_file()]
    assert run["tokenizer_sha"] in shas and run["config"]["gen.kind"] == "masked"
    assert np.isfinite(metrics["eval/fid"]) and 0 <= metrics["probe/word_pair_acc"] <= 1


def test_a_second_trial_and_another_gen_setting_reuse_the_tokenizer(straight, tiny_corpus, trial_ws):
    _, _, out = straight
    sha = json.loads((out / "run.json").read_text())["tokenizer_sha"]
    folder = next(d for d in (trial_ws / "cache" / "tokenizers").iterdir()
                  if (d / "meta.json").is_file() and json.loads((d / "meta.json").read_text())["sha"] == sha)
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    other = trial_ws / "runs" / "masked-other"
    run_trial(cfg(tiny_corpus, seed=3, gen__lr=3e-4, gen__epochs=1, gen__cond="tokens"), None, workspace=trial_ws,
              out=other, log=lambda s: None)
    assert json.loads((other / "run.json").read_text())["tokenizer_sha"] == sha
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_killed_masked_trial_resumes_to_the_metrics_of_an_uninterrupted_one(straight, tiny_corpus, trial_ws):
    metrics, reports, _ = straight
    out = trial_ws / "runs" / "masked-killed"
    with pytest.raises(RuntimeError, match="debug.fail_epoch=2"):
        run_trial(cfg(tiny_corpus, debug__fail_epoch=2), None, workspace=trial_ws, out=out, log=lambda s: None)
    assert not (out / "metrics.json").exists()
    again = []
    resumed = run_trial(cfg(tiny_corpus, debug__fail_epoch=2), lambda m, c=None: again.append(dict(m)),
                        resume_dir=out / "checkpoint", workspace=trial_ws, out=out, log=lambda s: None)
    assert [int(m["gen/epoch"]) for m in again] == [2]
    for k in ("gen/loss", "val/eval/fid", "eval/fid", "eval/r_precision_top3", "probe/word_pair_acc",
              "probe/foot_skate"):
        assert resumed[k] == pytest.approx(metrics[k], rel=1e-5, abs=1e-9), k


def test_a_tokenizer_sha_that_does_not_match_stops_the_trial_before_training(tiny_corpus, trial_ws):
    out = trial_ws / "runs" / "masked-sha"
    with pytest.raises(TokenizerShaMismatch, match="tokenizer.sha=000000000000"):
        run_trial(cfg(tiny_corpus, tokenizer__sha="0" * 64), None, workspace=trial_ws, out=out, log=lambda s: None)
    assert not (out / "checkpoint" / "gen.pt").exists()


def test_a_nan_loss_ends_a_masked_trial_with_a_clear_error(tiny_corpus, trial_ws):
    with pytest.raises(FloatingPointError, match=r"generator: the loss became nan at epoch 1.*debug.nan_epoch"):
        run_trial(cfg(tiny_corpus, debug__nan_epoch=1), None, workspace=trial_ws, out=trial_ws / "runs" / "masked-nan",
                  log=lambda s: None)


def test_mate_sample_works_on_a_masked_run(straight, tmp_path, trial_ws, capsys):
    from mate.cli import main
    from PIL import Image

    _, _, out = straight
    assert main(["sample", "--run", str(out), "--text", "a person jumps", "--length", "30", "--n", "2",
                 "--out", str(tmp_path / "m.npy"), "--workspace", str(trial_ws)]) == 0
    got = np.load(tmp_path / "m.npy")
    assert got.shape == (2, 30, 263) and np.isfinite(got).all() and not np.allclose(got[0], got[1])
    assert main(["sample", "--run", str(out), "--text", "a person jumps", "--length", "30",
                 "--out", str(tmp_path / "m.gif"), "--workspace", str(trial_ws)]) == 0
    assert Image.open(tmp_path / "m.gif").n_frames > 1
