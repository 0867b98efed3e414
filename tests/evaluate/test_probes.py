"""Physical probes (mate.evaluate.probes) on real synthetic corpora written to disk: the action rule and the
attribute probes read the annotations back, minimal-pair accuracy separates correct from wrong generators, and the
plausibility measures rank clean motion above noisy or sliding motion."""

from __future__ import annotations

import json
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mate.data.synth import synthesize
from mate.data.synth.schema import ACTIONS
from mate.evaluate import probes


class Corpus:
    def __init__(self, root: Path):
        self.root = root
        self.annotations = [json.loads(x) for x in (root / "annotations.jsonl").read_text().splitlines()]
        self.features = {a["id"]: np.load(root / "new_joint_vecs" / f"{a['id']}.npy") for a in self.annotations}
        self.pairs = [json.loads(x) for x in (root / "prompts" / "minimal_pairs.jsonl").read_text().splitlines()]

    @property
    def feature_list(self) -> list[np.ndarray]:
        return [self.features[a["id"]] for a in self.annotations]

    def segments(self):
        for a in self.annotations:
            for g in a["segments"]:
                yield self.features[a["id"]], g


@pytest.fixture(scope="module")
def corpora(tiny_corpus, tmp_path_factory) -> list[Corpus]:
    """The session's tiny corpus (seed 0) and one more seed: ~450 annotated segments, 160 antonym pairs."""
    extra = tmp_path_factory.mktemp("probes3")
    synthesize(extra, num=128, seed=3, progress=False, workers=1)
    return [Corpus(tiny_corpus), Corpus(extra)]


@pytest.fixture(scope="module")
def corpus(corpora) -> Corpus:
    return corpora[0]


# ---------------------------------------------------------------------------------------------- features, joints


def test_joints_match_the_torch_recovery(corpus):
    from mate.data.features import features_to_joints

    f = corpus.feature_list[3]
    np.testing.assert_allclose(probes.joints(f), features_to_joints(f.astype(np.float64)), atol=1e-9)
    np.testing.assert_allclose(probes.joints(f), np.load(corpus.root / "new_joints" / "000003.npy"), atol=1e-4)


def test_wrong_feature_width_is_a_clear_error(corpus):
    bad = np.zeros((50, 251), np.float32)
    for call in (lambda: probes.probe_segment(bad, (0, 10)), lambda: probes.foot_skate(bad),
                 lambda: probes.jitter(bad), lambda: probes.read_action(bad),
                 lambda: probes.probe_accuracy([bad], corpus.annotations[:1])):
        with pytest.raises(ValueError, match=r"\(50, 251\)"):
            call()
    with pytest.raises(ValueError, match=r"\(263,\)"):
        probes.jitter(np.zeros(263))
    with pytest.raises(ValueError, match="span"):
        probes.probe_segment(corpus.feature_list[0], (5, 5000))


# -------------------------------------------------------------------------------------------- segment probes


def test_probe_accuracy_meets_the_targets(corpora):
    feats = [f for c in corpora for f in c.feature_list]
    anns = [a for c in corpora for a in c.annotations]
    acc = probes.probe_accuracy(feats, anns)
    assert set(acc) == {f"probe/{a}_acc" for a in ("turn", "direction", "speed", "action", "limb")}
    carried = Counter(k for a in anns for g in a["segments"] for k in g["attributes"])
    segments = sum(len(a["segments"]) for a in anns)  # each carries an action and a speed ("normal" when absent)
    assert segments >= 400 and min(carried[k] for k in ("turn", "direction", "limb")) >= 50, (segments, carried)
    for attribute in ("turn", "direction", "speed", "limb"):
        assert acc[f"probe/{attribute}_acc"] >= 0.99, acc
    assert acc["probe/action_acc"] >= 0.97, acc


def test_action_rule_reads_every_action(corpora):
    feats = [f for c in corpora for f in c.feature_list]
    anns = [a for c in corpora for a in c.annotations]
    conf = probes.action_confusion(feats, anns)
    for action in ACTIONS:
        row = conf[action]
        assert sum(row.values()) >= 15, (action, row)
        assert row[action] / sum(row.values()) >= 0.95, (action, row)


def test_probes_follow_the_motion_not_the_annotation(corpora):
    """Played backwards (joints reversed in time, features recomputed), a single-action clip is still the same
    action, while its direction of travel and its turn flip: the probes read the rows, not a clip's identity."""
    from mate.data.features import joints_to_features
    from mate.data.synth.schema import ANTONYMS

    actions, flipped = set(), 0
    for corpus in corpora:
        for a in corpus.annotations:
            if len(a["segments"]) != 1:
                continue
            g = a["segments"][0]
            rev = joints_to_features(probes.joints(corpus.features[a["id"]])[::-1].copy())
            got = probes.probe_segment(rev, None, g["action"])
            assert got["action"] == g["action"], (a["id"], g, got)
            actions.add(g["action"])
            for attribute in ("direction", "turn"):
                if attribute in g["attributes"]:
                    assert got[attribute] == ANTONYMS[attribute][g["attributes"][attribute]], (a["id"], g, got)
                    flipped += 1
    assert len(actions) == len(ACTIONS) - 1 or len(actions) == len(ACTIONS)
    assert flipped >= 40


def test_probe_segment_reads_the_applicable_attributes(corpus):
    checked = 0
    for f, g in corpus.segments():
        got = probes.probe_segment(f, g["span"], g["action"])
        assert got["action"] == g["action"]
        for attribute, value in g["attributes"].items():
            assert got[attribute] == value, (g, got)
        if g["action"] == "wave":
            assert set(got) == {"action", "speed", "limb"}
        if g["action"] == "squat":
            assert set(got) == {"action", "speed"}
        assert got["speed"] == g["attributes"].get("speed", "normal")
        assert probes.probe_segment(f, g["span"]) == got  # the rule's own action reading gives the same
        checked += 1
    assert checked > 150


def test_a_standing_body_is_not_read_as_locomotion(corpus):
    """Rows of a person standing still (the first row of a clip repeated, no root motion) are no action at all;
    nudged along at 0.1 m/s (below the travel threshold) they read as the closest action, a walk."""
    f = np.repeat(corpus.feature_list[0][:1].astype(np.float64), 60, axis=0)
    f[:, :3] = 0.0
    cues = probes.action_cues(f)
    assert cues.travel == 0.0 and cues.flight == 0.0 and cues.yaw < 1.0 and abs(cues.kick) < 0.01
    assert probes.read_action(f) == probes.NO_ACTION == "none"
    assert probes.probe_segment(f) == {"action": "none"}
    assert probes.probe_segment(f, action="squat") == {"action": "none", "speed": "slowly"}
    f[:, 2] = 0.1 / probes.FPS
    assert probes.read_action(f) == "walk"


# --------------------------------------------------------------------------------------------- minimal pairs


class PairSampler:
    """A stand-in generator over one corpus, keyed by the pairs' captions.

    mode "correct": text_a -> the pair's own clip; text_b -> that clip with the pair's segment replaced by a real
    segment of the same action that has value_b (from anywhere in the corpus). mode "same": both captions -> the
    clip itself (a generator deaf to the swapped word). mode "noncomp": "correct" for non-compositional pairs,
    "same" for compositional ones. mode "noise": random features at the corpus's per-dimension mean and std.
    """

    def __init__(self, corpus: Corpus, mode: str):
        self.corpus, self.mode = corpus, mode
        self.calls: list[tuple[list[str], list[int], int]] = []
        self.by_a = {p["text_a"]: p for p in corpus.pairs if p["kind"] == "antonym"}
        self.by_b = {p["text_b"]: p for p in corpus.pairs if p["kind"] == "antonym"}
        self.mean = np.load(corpus.root / "Mean.npy")
        self.std = np.load(corpus.root / "Std.npy")

    def _source(self, pair: dict) -> np.ndarray:
        """Rows of a real segment with the pair's action and value_b, the length closest to the pair's span."""
        want = pair["span"][1] - pair["span"][0]
        best = None
        for f, g in self.corpus.segments():
            if g["action"] == pair["action"] and g["attributes"].get(pair["attribute"]) == pair["value_b"]:
                n = g["span"][1] - g["span"][0]
                key = (n > want, abs(n - want))
                if best is None or key < best[0]:
                    best = (key, f[g["span"][0]:g["span"][1]])
        assert best is not None, pair
        return best[1]

    def __call__(self, texts: list[str], lengths: list[int], seed: int) -> list[np.ndarray]:
        self.calls.append((list(texts), list(lengths), seed))
        out = []
        for i, (text, n) in enumerate(zip(texts, lengths)):
            if self.mode == "noise":  # independent noise per caption (not per position: that would be deaf)
                rng = np.random.default_rng([seed, zlib.crc32(text.encode())])
                out.append((self.mean + self.std * rng.standard_normal((n, 263))).astype(np.float32))
                continue
            is_b = text in self.by_b
            pair = self.by_b[text] if is_b else self.by_a[text]
            clip = self.corpus.features[pair["clip"]]
            assert n == pair["length"] == len(clip)
            swap = is_b and (self.mode == "correct" or self.mode == "noncomp" and not pair["compositional"])
            if swap:
                s = pair["span"][0]
                clip = np.concatenate([clip[:s], self._source(pair)])
            out.append(clip)
        return out


def test_word_pair_acc_of_a_correct_generator_is_high(corpora):
    for corpus in corpora:
        sampler = PairSampler(corpus, "correct")
        acc = probes.word_pair_accuracy(corpus.pairs, sampler, seed=5)
        assert acc["probe/word_pair_acc"] >= 0.95, acc
        assert acc["probe/word_pair_acc_comp"] >= 0.95, acc
        for attribute in ("turn", "direction", "speed", "limb"):
            assert acc[f"probe/word_pair_acc_{attribute}"] >= 0.9, acc
        # One call for all text_a and one for all text_b, with the same lengths and seed.
        (texts_a, len_a, seed_a), (texts_b, len_b, seed_b) = sampler.calls
        n = sum(p["kind"] == "antonym" for p in corpus.pairs)
        assert len(texts_a) == len(texts_b) == n and len_a == len_b and seed_a == seed_b == 5
        assert all(t in sampler.by_a for t in texts_a) and all(t in sampler.by_b for t in texts_b)


def test_word_pair_acc_of_a_deaf_generator_is_near_zero(corpus):
    acc = probes.word_pair_accuracy(corpus.pairs, PairSampler(corpus, "same"), seed=0)
    assert acc["probe/word_pair_acc"] <= 0.05, acc
    assert acc["probe/word_pair_acc_comp"] <= 0.05, acc


def test_word_pair_acc_of_noise_is_at_or_below_chance(corpora):
    for corpus in corpora:
        acc = probes.word_pair_accuracy(corpus.pairs, PairSampler(corpus, "noise"), seed=0)
        assert acc["probe/word_pair_acc"] <= 0.3, acc


def test_comp_is_computed_over_compositional_pairs_only(corpus):
    """A generator that gets only the non-compositional pairs right: _comp ~ 0, the whole ~ their share."""
    ant = [p for p in corpus.pairs if p["kind"] == "antonym"]
    share = 1 - np.mean([p["compositional"] for p in ant])
    assert 0.2 < share < 0.8
    acc = probes.word_pair_accuracy(corpus.pairs, PairSampler(corpus, "noncomp"), seed=0)
    assert acc["probe/word_pair_acc_comp"] <= 0.05, acc
    assert abs(acc["probe/word_pair_acc"] - share) <= 0.05, (acc, share)


def test_pair_cap_is_a_deterministic_subset(corpus):
    def used(seed, n, batch_size=None):
        sampler = PairSampler(corpus, "correct")
        acc = probes.word_pair_accuracy(corpus.pairs, sampler, seed=seed, n=n, batch_size=batch_size)
        return [t for texts, _, _ in sampler.calls[::2] for t in texts], sampler.calls, acc

    a, calls, acc = used(1, 12)
    assert len(a) == 12 and len(calls) == 2
    assert used(1, 12)[0] == a
    assert used(2, 12)[0] != a
    # Chunks: text_a and text_b of each chunk share a seed (seed + chunk index) and lengths.
    a4, calls4, acc4 = used(1, 12, batch_size=5)
    assert a4 == a and acc4 == acc
    assert [len(c[0]) for c in calls4] == [5, 5, 5, 5, 2, 2]
    assert [c[2] for c in calls4] == [1, 1, 2, 2, 3, 3]
    assert all(calls4[k][1] == calls4[k + 1][1] for k in range(0, 6, 2))


def test_short_or_broken_motions_count_as_misses(corpus):
    ant = [p for p in corpus.pairs if p["kind"] == "antonym"][:6]
    good = PairSampler(corpus, "correct")
    ma = good([p["text_a"] for p in ant], [p["length"] for p in ant], 0)
    mb = good([p["text_b"] for p in ant], [p["length"] for p in ant], 0)
    assert all(probes.score_pairs(ant, ma, mb))
    broken = [np.full_like(m, np.nan) for m in mb]
    assert not any(probes.score_pairs(ant, ma, broken))
    short = [m[:p["span"][0] + 1] for m, p in zip(mb, ant)]  # fewer than 2 rows of the span left
    assert not any(probes.score_pairs(ant, ma, short))
    with pytest.raises(ValueError, match="motions"):
        probes.score_pairs(ant, ma, mb[:-1])


# ----------------------------------------------------------------------------------------------- plausibility


def _glide(corpus: Corpus, speed: float, n: int = 60) -> np.ndarray:
    """A person standing still (first row of a clip) dragged forward at `speed` m/s with the feet on the floor."""
    f = np.repeat(corpus.feature_list[0][:1].astype(np.float64), n, axis=0)
    f[:, 0] = 0.0
    f[:, 1] = 0.0
    f[:, 2] = speed / probes.FPS
    return f


def test_foot_skate_and_jitter_units(corpus):
    assert probes.foot_skate(_glide(corpus, 0.0)) == pytest.approx(0.0, abs=1e-9)
    assert probes.foot_skate(_glide(corpus, 1.0)) == pytest.approx(1.0, rel=1e-6)
    assert probes.jitter(_glide(corpus, 1.0)) == pytest.approx(0.0, abs=1e-6)  # constant velocity: no jerk
    lifted = _glide(corpus, 1.0)
    lifted[:, 3] += 0.3  # the floor is each motion's own (its lowest foot joint): a global offset changes nothing
    assert probes.foot_skate(lifted) == pytest.approx(1.0, rel=1e-6)


def test_clean_motion_is_more_plausible_than_noisy_or_sliding(corpus):
    rng = np.random.default_rng(0)
    clean = [f.astype(np.float64) for f in corpus.feature_list[:60]]
    noisy = [f + rng.normal(0.0, 0.003, f.shape) for f in clean]
    sliding = []
    for f in clean:
        g = f.copy()
        g[:, 1:3] *= 1.25  # the body travels further than its steps: planted feet slide
        g[:, 1] += 0.01  # and drifts sideways at 0.2 m/s
        sliding.append(g)
    p_clean, p_noisy, p_slide = (probes.plausibility(x) for x in (clean, noisy, sliding))
    assert p_clean["probe/foot_skate"] < 0.05, p_clean
    assert p_noisy["probe/foot_skate"] > 2 * p_clean["probe/foot_skate"], (p_clean, p_noisy)
    assert p_slide["probe/foot_skate"] > 3 * p_clean["probe/foot_skate"], (p_clean, p_slide)
    assert p_noisy["probe/jitter"] > 1.5 * p_clean["probe/jitter"], (p_clean, p_noisy)
    assert p_slide["probe/jitter"] == pytest.approx(p_clean["probe/jitter"], rel=0.05)  # sliding is not jitter
    for f, g in zip(clean[:20], noisy[:20]):
        assert probes.jitter(g) > probes.jitter(f)
