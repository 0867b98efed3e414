"""The val objectives that choose between trials are scored by an evaluator that never saw the val clips: the
scoring recipe trained without them, cached and pinned like the scorer, and a trial's val figures come from it."""

from __future__ import annotations

import json

import pytest

from mate.config import resolve
from mate.data.pack import open_pack
from mate.errors import UserError
from mate.evaluate.generated import score_sampler
from mate.evaluate.retrieval import train_or_load, val_scorer
from mate.evaluate.retrieval.train import training_splits, val_scorer_config
from mate.pipeline import _sampler, load_run, read_history, run_trial
from mate.text.encoder import TextEncoder

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


@pytest.fixture(scope="module")
def setup(tiny_corpus, trial_ws):
    cfg = resolve({"profile": "tiny", "data.dir": str(tiny_corpus)})
    pack = open_pack(tiny_corpus, trial_ws, progress=False)
    encoder = TextEncoder.load(cfg["encoder.path"], cfg["encoder.family"])
    scorer = train_or_load(pack, encoder, cfg, trial_ws, seed=cfg.seed_for("evaluator"), progress=False)
    return cfg, pack, encoder, scorer


def test_the_val_scorer_is_the_scoring_recipe_without_the_val_clips(setup, trial_ws):
    cfg, pack, encoder, scorer = setup
    assert training_splits(cfg, pack) == ["train", "val"]  # the scorer of test figures sees val
    ev = val_scorer(pack, encoder, cfg, trial_ws, scorer=scorer, progress=False)
    assert training_splits(val_scorer_config(cfg, pack), pack) == ["train"]
    assert ev.sha != scorer.sha and ev.meta["config"]["evaluator.splits"] == "train"
    assert "val/r_precision_top3" in "".join(ev.meta)  # it was checked on val, which it held out
    for k in ("evaluator.hidden", "evaluator.dim", "evaluator.epochs", "evaluator.lr"):
        assert ev.meta["config"][k] == scorer.meta["config"][k]  # the same recipe
    # a scorer that never saw val scores val itself; one trained on val alone leaves nothing to score it with
    train_only = resolve({**cfg.to_dict(), "evaluator.splits": "train"})
    assert val_scorer_config(train_only, pack) is None
    assert val_scorer(pack, encoder, train_only, trial_ws, progress=False).sha == ev.sha
    with pytest.raises(UserError, match="evaluator.splits=val: the val objectives need an evaluator"):
        val_scorer_config(resolve({**cfg.to_dict(), "evaluator.splits": "val"}), pack)


def test_a_trials_val_figures_come_from_the_val_scorer(setup, trial_ws):
    cfg, pack, encoder, scorer = setup
    one = resolve({**cfg.to_dict(), "gen.epochs": 1, "align.enabled": False})
    out = trial_ws / "runs" / "val-scorer"
    run_trial(one, workspace=trial_ws, out=out)
    info = json.loads((out / "run.json").read_text())
    ev = val_scorer(pack, encoder, one, trial_ws, scorer=scorer, progress=False)
    assert info["val_evaluator_sha"] == ev.sha and info["evaluator_sha"] == scorer.sha
    logged = read_history(out)[-1]
    run = load_run(out, trial_ws)
    again = score_sampler(_sampler(run.generator, pack, one), pack, ev, "val", items=one["eval.val_items"],
                          pairs=one["eval.val_items"], lexicon=one["eval.val_items"], repeats=1,
                          seed=one.seed_for("eval"))
    assert logged["val/eval/fid"] == pytest.approx(again["val/eval/fid"], rel=1e-6)
    assert logged["val/eval/r_precision_top3"] == pytest.approx(again["val/eval/r_precision_top3"])
    # a pinned val scorer that is not this one stops the trial before it trains
    with pytest.raises(UserError, match="the val scorer is .*, but evaluator.val_sha=0000"):
        run_trial(resolve({**one.to_dict(), "evaluator.val_sha": "0" * 64}), workspace=trial_ws,
                  out=trial_ws / "runs" / "val-scorer-bad")


def test_a_trial_refuses_guos_scorer_before_anything_runs(tiny_corpus, trial_ws):
    with pytest.raises(UserError, match="eval.scorer=guo: trials score with our retrieval evaluator"):
        run_trial(resolve({"profile": "tiny", "data.dir": str(tiny_corpus), "eval.scorer": "guo"}),
                  workspace=trial_ws, out=trial_ws / "runs" / "guo")
