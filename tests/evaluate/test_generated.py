"""Scoring a sampler (eval/* and probe/*) with the real tiny evaluator: real motion scores as real motion, the
baselines that ignore the text score what they must, and broken samplers stop with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from mate.config import resolve
from mate.data.pack import open_pack
from mate.evaluate.generated import fixed_items, mean_motion_sampler, random_clip_sampler, score_sampler
from mate.evaluate.retrieval import train_or_load
from mate.evaluate.truth import load_annotations

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


@pytest.fixture(scope="module")
def setup(tiny_corpus, trial_ws, minilm):
    pack = open_pack(tiny_corpus, trial_ws, progress=False)
    cfg = resolve({"profile": "tiny", "data.dir": str(tiny_corpus)})
    ev = train_or_load(pack, minilm, cfg, trial_ws, seed=cfg.seed_for("evaluator"), progress=False)
    return pack, ev, load_annotations(tiny_corpus)


def oracle(pack, split):
    """The real motion of each asked caption (the item's own crop), as a perfect generator would give; the mean
    motion for texts it has no clip of (the minimal pairs' edited captions)."""
    by_text = {it["text"]: pack.denormalize(it["motion"]) for it in fixed_items(pack, split)}
    mean = pack.mean.astype(np.float32)

    def sample(texts, lengths, seed):
        return [by_text[t][:n] if t in by_text else np.repeat(mean[None], n, 0) for t, n in zip(texts, lengths)]

    return sample


def test_real_motion_scores_like_the_real_row_and_baselines_score_below_it(setup):
    pack, ev, notes = setup
    real = score_sampler(oracle(pack, "test"), pack, ev, "test", repeats=2, notes=notes)
    mean = score_sampler(mean_motion_sampler(pack), pack, ev, "test", repeats=2, notes=notes)
    rand = score_sampler(random_clip_sampler(pack), pack, ev, "test", repeats=2, notes=notes)
    assert real["eval/fid"] < 1e-3  # the same motions on both sides
    assert real["eval/r_precision_top3"] > rand["eval/r_precision_top3"]
    assert real["eval/fid"] < rand["eval/fid"] < mean["eval/fid"]
    assert mean["probe/word_pair_acc"] == 0.0  # both captions of a pair get the same motion
    assert real["probe/turn_acc"] > 0.9 and real["probe/action_acc"] > mean["probe/action_acc"]
    assert real["probe/foot_skate"] < rand["probe/foot_skate"] * 3


def test_val_names_and_the_same_items_and_pairs_whatever_the_trials_seed(setup):
    """A search gives each trial its own seed: they must still be scored on the same val items and pairs, so that
    configs are compared on the same captions; the seed drives only the sampling."""
    pack, ev, notes = setup
    asked: dict[int, list[str]] = {}

    def recording(seed_key):
        clips = random_clip_sampler(pack)

        def sample(texts, lengths, seed):
            asked.setdefault(seed_key, []).extend(texts)
            return clips(texts, lengths, seed)

        return sample

    a = score_sampler(recording(1), pack, ev, "val", items=32, pairs=8, lexicon=8, repeats=1, seed=1, notes=notes)
    b = score_sampler(recording(2), pack, ev, "val", items=32, pairs=8, lexicon=8, repeats=1, seed=2, notes=notes)
    assert all(k.startswith("val/") for k in a) and set(a) == set(b)
    assert asked[1] == asked[2] and len(set(asked[1])) > 32  # the items, then the annotated and lexicon pairs
    assert a["val/eval/fid"] != b["val/eval/fid"]  # the seed still draws other samples
    assert len(fixed_items(pack, "val", 32)) == 32 < len(fixed_items(pack, "val"))


def test_a_broken_sampler_is_a_clear_error(setup):
    pack, ev, _ = setup

    def short(texts, lengths, seed):
        return [np.zeros((n - 1, pack.dim), np.float32) for n in lengths]

    def nan(texts, lengths, seed):
        return [np.full((n, pack.dim), np.nan, np.float32) for n in lengths]

    with pytest.raises(ValueError, match="expected"):
        score_sampler(short, pack, ev, "test", repeats=1)
    with pytest.raises(FloatingPointError, match="NaN"):
        score_sampler(nan, pack, ev, "test", repeats=1)


def test_the_papers_protocol_regenerates_each_repetition_and_measures_multimodality(setup):
    """A sampler that ignores its seed gives the same motions every repetition and every draw: no FID spread over
    regenerations and zero MultiModality; a seed-driven one (a random real clip per call) spreads and varies."""
    pack, ev, notes = setup
    fixed, random = oracle(pack, "test"), random_clip_sampler(pack)
    kw = dict(repeats=3, regenerate=True, mm_texts=8, mm_samples=3, lexicon=8)
    same = score_sampler(fixed, pack, ev, "test", **kw)
    varied = score_sampler(random, pack, ev, "test", **kw)
    assert same["eval/fid_ci95"] == 0  # (R-Precision still varies: each repetition batches the items anew)
    assert same["eval/multimodality"] == 0 and varied["eval/multimodality"] > 0
    assert varied["eval/fid_ci95"] > 0
    once = score_sampler(random, pack, ev, "test", repeats=3, lexicon=8)
    assert "eval/multimodality" not in once  # off unless asked (mm_texts 0)
    assert once["eval/fid"] != varied["eval/fid"]  # one generation's full-set FID, not the mean over three
