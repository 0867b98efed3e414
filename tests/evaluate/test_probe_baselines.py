"""Samplers that ignore the text score what they must on the antonym pairs (so the probes can fail), and foot
skating separates planted feet from a shuffled root trajectory."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest

from mate.data.synth import rules
from mate.evaluate import probes


@pytest.fixture(scope="module")
def corpus(tiny_corpus):
    notes = [json.loads(x) for x in (tiny_corpus / "annotations.jsonl").read_text().splitlines()]
    clips = [np.load(tiny_corpus / "new_joint_vecs" / f"{a['id']}.npy") for a in notes]
    pairs = [json.loads(x) for x in (tiny_corpus / "prompts" / "minimal_pairs.jsonl").read_text().splitlines()]
    return tiny_corpus, clips, [p for p in pairs if p["kind"] == "antonym"]


def _fit(clip: np.ndarray, length: int) -> np.ndarray:
    return clip[:length]


def test_mean_motion_and_a_fixed_clip_score_zero(corpus):
    root, clips, pairs = corpus
    mean = np.load(root / "Mean.npy").astype(np.float32)

    def mean_motion(texts, lengths, seed):
        return [np.repeat(mean[None], n, 0) for n in lengths]

    def fixed_clip(texts, lengths, seed):
        return [_fit(clips[0], n) for n in lengths]

    for sampler in (mean_motion, fixed_clip):
        acc = probes.word_pair_accuracy(pairs, sampler, seed=0)
        assert acc["probe/word_pair_acc"] == 0.0, (sampler.__name__, acc)  # both captions get the same motion


def test_independent_random_clips_score_chance(corpus):
    """Chance of a pair = P(probe reads value_a) x P(probe reads value_b) over the corpus's clips (independent draws);
    a sampler drawing a random real clip per caption lands within 0.05 of it, attribute by attribute."""
    _, clips, pairs = corpus
    reads = {}
    for i, p in enumerate(pairs):
        got = []
        for c in clips:
            m = _fit(c, p["length"])
            span = (p["span"][0], min(p["span"][1], len(m)))  # as the probe cuts it; < 2 rows left is a miss
            got.append(rules.read(m, span, p["action"], p["attribute"]) if span[1] - span[0] >= 2 else None)
        reads[i] = got
    chance: dict[str, list[float]] = {}
    for i, p in enumerate(pairs):
        pa = np.mean([g == p["value_a"] for g in reads[i]])
        pb = np.mean([g == p["value_b"] for g in reads[i]])
        chance.setdefault(p["attribute"], []).append(pa * pb)

    def random_clip(texts, lengths, seed):
        # the two captions of a pair come in two calls with the same seed: draw from the texts too, independently
        rng = np.random.default_rng([seed, zlib.crc32("\n".join(texts).encode())])
        return [_fit(clips[int(rng.integers(len(clips)))], n) for n in lengths]

    got: dict[str, list[float]] = {}
    for seed in range(30):
        acc = probes.word_pair_accuracy(pairs, random_clip, seed=seed)
        for attr in chance:
            got.setdefault(attr, []).append(acc[f"probe/word_pair_acc_{attr}"])
    for attr in chance:
        mean_got, mean_chance = np.mean(got[attr]), np.mean(chance[attr])
        assert abs(mean_got - mean_chance) <= 0.05, (attr, mean_got, mean_chance)
    # a two-valued attribute's chance is near 25% when the probe reads both values about equally often
    assert 0.1 < np.mean(chance["turn"]) <= 0.3


def test_foot_skate_bound_and_shuffled_root(corpus):
    _, clips, _ = corpus
    clean = np.array([probes.foot_skate(c) for c in clips])
    rng = np.random.default_rng(0)
    shuffled = []
    for c in clips:
        s = c.copy()
        s[:, 1:3] = s[rng.permutation(len(s)), 1:3]  # the root's xz velocity in another order: feet slide
        shuffled.append(probes.foot_skate(s))
    assert clean.mean() < 0.05  # m/s, the stated bound for planted synthetic feet
    assert np.mean(shuffled) >= 3 * clean.mean()
