"""The trial (docs/architecture.md §4) on the tiny corpus with the real MiniLM, evaluator and generator: per-epoch
reports with their checkpoint, the align stage cached across generator-only changes, the baseline, and the ways a trial
must end with a clear error instead of garbage metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mate.config import resolve
from mate.pipeline import EvaluatorMismatch, align_key, load_run, read_history, run_trial

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


SHARED_CACHES = ("packs", "evaluators", "tokenizers", "text", "segments", "localize")


@pytest.fixture(scope="module")
def ws(trial_ws, tmp_path_factory):
    """A workspace whose alignments are this module's own, so that its first trial trains one whichever module ran
    before (its tests compare that trial with the ones that reuse it); every other cache is the shared trial
    workspace's, linked, never deleted: the tests pass in any order."""
    own = tmp_path_factory.mktemp("ws-pipeline")
    for name in SHARED_CACHES:
        (trial_ws / "cache" / name).mkdir(parents=True, exist_ok=True)
        (own / "cache").mkdir(exist_ok=True)
        (own / "cache" / name).symlink_to(trial_ws / "cache" / name, target_is_directory=True)
    return own


def cfg(tiny_corpus, **over):
    return resolve({"profile": "tiny", "data.dir": str(tiny_corpus), **{k.replace("__", "."): v
                                                                         for k, v in over.items()}})


@pytest.fixture(scope="module")
def first(tiny_corpus, ws):
    reports, lines = [], []
    out = ws / "runs" / "first"
    metrics = run_trial(cfg(tiny_corpus), lambda m, c=None: reports.append((dict(m), c)), workspace=ws, out=out,
                        log=lines.append)
    return metrics, reports, lines, out


def test_a_trial_reports_every_epoch_with_its_checkpoint_and_writes_its_artifacts(first, tiny_corpus):
    metrics, reports, _, out = first
    c = cfg(tiny_corpus)
    assert [int(m["gen/epoch"]) for m, _ in reports] == list(range(1, c["gen.epochs"] + 1))
    for m, ckpt in reports:
        assert (ckpt / "gen.pt").is_file()
        assert 0.0 <= m["val/eval/r_precision_top3"] <= 1.0 and m["val/eval/fid"] >= 0.0
        assert "val/probe/word_pair_acc" in m
    assert not any(k.startswith(("eval/", "probe/")) for m, _ in reports[:-1] for k in m)  # epochs report val only
    assert reports[-1][0]["eval/fid"] == metrics["eval/fid"]  # the last report carries the test figures
    assert "align/loss" in reports[0][0]  # the align stage rides on the first report (and on the final one)
    for k in ("eval/fid", "eval/r_precision_top3", "probe/word_pair_acc", "probe/foot_skate", "align/pair_margin_turn",
              "cost/trial_seconds", "cost/align_seconds", "cost/gen_seconds", "cost/eval_seconds"):
        assert k in metrics, k
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["eval/fid"] == pytest.approx(metrics["eval/fid"])
    run = json.loads((out / "run.json").read_text())
    assert run["evaluator_sha"] and run["dataset_hash"] and run["config"]["profile"] == "tiny"
    assert (out / "generator.pt").is_file() and (out / "aligned_rows.safetensors").is_file()
    lines = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [x["gen/epoch"] for x in lines] == [m["gen/epoch"] for m, _ in reports]


def test_a_kill_between_the_checkpoint_and_its_val_scoring_loses_no_epoch(first, tiny_corpus, ws):
    """The last epoch's checkpoint was written, then the process died before scoring it: no history line, no
    metrics.json. Resuming scores that epoch again and finishes with the same figures as the uninterrupted run."""
    metrics, reports, _, out = first
    cut = ws / "runs" / "cut-after-checkpoint"
    shutil.copytree(out, cut)
    (cut / "metrics.json").unlink()
    lines = (cut / "history.jsonl").read_text().splitlines()
    (cut / "history.jsonl").write_text("".join(x + "\n" for x in lines[:-1]))
    spent = json.loads((cut / "checkpoint" / "spent.json").read_text())["seconds"]  # the first try, to epoch n-1
    assert 0 < spent < metrics["cost/trial_seconds"]
    again = []
    resumed = run_trial(cfg(tiny_corpus), lambda m, c=None: again.append(dict(m)), resume_dir=cut / "checkpoint",
                        workspace=ws, out=cut)
    assert resumed["cost/trial_seconds"] >= spent + resumed["cost/eval_seconds"]  # every try counts, not the last
    history = read_history(cut)
    assert [x["gen/epoch"] for x in history] == [m["gen/epoch"] for m, _ in reports]
    last = reports[-1][0]
    for k in ("val/eval/r_precision_top3", "val/eval/fid", "val/probe/word_pair_acc"):
        assert history[-1][k] == pytest.approx(last[k], abs=1e-6), k
        assert again[-1][k] == pytest.approx(last[k], abs=1e-6), k
    assert resumed["eval/fid"] == pytest.approx(metrics["eval/fid"], rel=1e-5)


def test_a_trial_resumed_on_another_node_takes_its_rows_from_the_checkpoint(first, tiny_corpus, ws, tmp_path):
    """A restored sweep may place a trial on a node whose cache never saw its alignment: the checkpoint carries the
    rows, so the resume skips the align stage and conditions on exactly the rows the first node trained."""
    metrics, _, _, out = first
    node = tmp_path / "other-node"
    shutil.copytree(ws / "cache", node / "cache", ignore=shutil.ignore_patterns("align"))  # its prepare outputs only
    cut = tmp_path / "run"
    shutil.copytree(out, cut)
    (cut / "metrics.json").unlink()
    lines = []
    resumed = run_trial(cfg(tiny_corpus), None, resume_dir=cut / "checkpoint", workspace=node, out=cut,
                        log=lines.append)
    assert any(x.startswith("align: the rows from the checkpoint") for x in lines), lines
    assert not any(x.startswith("align: training") for x in lines)
    rows = list((node / "cache" / "align").glob("*/aligned_rows.safetensors"))
    assert len(rows) == 1 and rows[0].read_bytes() == (out / "aligned_rows.safetensors").read_bytes()
    assert resumed["align/pair_margin_turn"] == metrics["align/pair_margin_turn"]
    assert resumed["eval/fid"] == pytest.approx(metrics["eval/fid"], rel=1e-5)


def test_a_generator_only_change_reuses_the_alignment(first, tiny_corpus, ws):
    metrics, _, lines, out = first
    cached = Path(json.loads((out / "run.json").read_text())["align_dir"])
    stamp = (cached / "aligned_rows.safetensors").stat().st_mtime_ns
    other = []
    second = run_trial(cfg(tiny_corpus, gen__lr=3e-3, gen__epochs=1), None, workspace=ws, out=ws / "runs" / "second",
                       log=other.append)
    # the first trial's cached rows, neither a second alignment nor the same one trained again
    assert Path(json.loads((ws / "runs" / "second" / "run.json").read_text())["align_dir"]) == cached
    assert (cached / "aligned_rows.safetensors").stat().st_mtime_ns == stamp
    assert (ws / "runs" / "second" / "aligned_rows.safetensors").read_bytes() == (
        out / "aligned_rows.safetensors").read_bytes()
    assert any(line.startswith("align: training") for line in lines)
    assert any(line.startswith("align: reusing") for line in other) and not any("training" in x for x in other)
    assert second["align/pair_margin_turn"] == metrics["align/pair_margin_turn"]
    base = cfg(tiny_corpus)
    key = align_key(base, "d", "e")
    assert align_key(cfg(tiny_corpus, gen__lr=3e-3, gen__cond="tokens", eval__samples=64), "d", "e") == key
    # what a sweep pins for its scorers (mate train leaves them unset): the same alignment, reused both ways
    pinned = {"evaluator__seed": base.seed_for("evaluator"), "evaluator__sha": "a" * 64, "evaluator__val_sha": "b" * 64}
    assert align_key(cfg(tiny_corpus, **pinned), "d", "e") == key
    for change in ({"align__sigma_scale": 0.5}, {"seed": 1}, {"segment__backend": "truth"}, {"evaluator__dim": 16}):
        assert align_key(cfg(tiny_corpus, **change), "d", "e") != key, change
    assert align_key(base, "other-data", "e") != key and align_key(base, "d", "other-encoder") != key


def test_the_baseline_trains_no_rows_and_conditions_on_the_base_model(tiny_corpus, ws):
    out = ws / "runs" / "baseline"
    metrics = run_trial(cfg(tiny_corpus, align__enabled=False, gen__epochs=1), None, workspace=ws, out=out,
                        log=lambda s: None)
    assert not (out / "aligned_rows.safetensors").exists()
    assert not any(k.startswith("align/") for k in metrics) and "eval/fid" in metrics
    run = load_run(out, ws)
    assert run.generator.text.encoder.rows is None
    got = run.sample(["a person walks forward"], [20], n=2, seed=3)
    assert [m.shape for m in got[0]] == [(20, 263)] * 2 and not (got[0][0] == got[0][1]).all()


def test_a_wrong_evaluator_sha_stops_the_trial_before_any_training(tiny_corpus, ws):
    before = sorted((ws / "cache" / "align").iterdir()) if (ws / "cache" / "align").is_dir() else []
    with pytest.raises(EvaluatorMismatch, match="evaluator.sha=000000000000"):
        run_trial(cfg(tiny_corpus, evaluator__sha="0" * 64, seed=7), None, workspace=ws, out=ws / "runs" / "sha",
                  log=lambda s: None)
    after = sorted((ws / "cache" / "align").iterdir()) if (ws / "cache" / "align").is_dir() else []
    assert after == before and not (ws / "runs" / "sha" / "metrics.json").exists()


def test_a_nan_loss_ends_the_trial_with_a_clear_error(tiny_corpus, ws):
    out = ws / "runs" / "nan"
    with pytest.raises(FloatingPointError, match="debug.nan_epoch"):
        run_trial(cfg(tiny_corpus, align__enabled=False, debug__nan_epoch=1), None, workspace=ws, out=out,
                  log=lambda s: None)
    assert not (out / "metrics.json").exists()
