"""The physical probes (mate.data.synth.rules) on the features on disk: each rule answers every value of its attribute,
follows the motion rather than the clip, and refuses bad input. (That they read the annotated values back is
tests/evaluate/test_probes.py's test_probe_accuracy_meets_the_targets, through the probe metric that runs them.)"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest

from mate.data.synth import rules, synthesize

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


@pytest.fixture(scope="module")
def corpora(tiny_corpus, tmp_path_factory):
    """The tiny corpus (seed 0) and two more seeds: a few hundred clips."""
    extra = []
    for seed in (1, 2):
        out = tmp_path_factory.mktemp(f"rules{seed}")
        synthesize(out, num=150, seed=seed, progress=False)
        extra.append(out)
    return [tiny_corpus, *extra]


def _segments(roots):
    for root in roots:
        for line in (root / "annotations.jsonl").read_text().splitlines():
            a = json.loads(line)
            f = np.load(root / "new_joint_vecs" / f"{a['id']}.npy")
            for g in a["segments"]:
                yield f, g


def test_rules_tell_antonyms_apart(corpora):
    """Each rule can answer both values (a rule stuck on one value would pass on a skewed corpus)."""
    seen = {a: Counter() for a in ("turn", "direction", "speed", "limb")}
    for f, g in _segments(corpora):
        for attribute in g["attributes"]:
            if attribute in seen:
                seen[attribute][rules.read(f, g["span"], g["action"], attribute)] += 1
    assert set(seen["turn"]) == {"clockwise", "counterclockwise"}
    assert set(seen["direction"]) == {"forward", "backward", "left", "right"}
    assert set(seen["speed"]) == {"quickly", "slowly"}
    assert set(seen["limb"]) == {"left", "right"}


def test_rules_follow_the_motion_not_the_clip(corpora):
    """Mirroring a clip left-right (x -> -x) swaps the turn, lateral direction and limb that the rules read."""
    mirrored = 0
    for f, g in _segments(corpora[:1]):
        if g["action"] not in ("turn", "side-step", "wave"):
            continue
        m = _mirror(f)
        for attribute, value in g["attributes"].items():
            if attribute in ("turn", "limb") or (attribute == "direction" and value in ("left", "right")):
                assert rules.read(m, g["span"], g["action"], attribute) != value
                mirrored += 1
    assert mirrored > 10


def _mirror(f: np.ndarray) -> np.ndarray:
    """Features of the left-right mirrored motion (swap left/right joints, negate x and the yaw rate)."""
    m = f.astype(np.float64).copy()
    swap = {1: 2, 4: 5, 7: 8, 10: 11, 13: 14, 16: 17, 18: 19, 20: 21}
    swap.update({v: k for k, v in swap.items()})
    ric = m[:, 4:67].reshape(len(m), 21, 3)
    ric = ric[:, [swap.get(j, j) - 1 for j in range(1, 22)]]
    ric[..., 0] *= -1
    m[:, 4:67] = ric.reshape(len(m), -1)
    m[:, 0] *= -1
    m[:, 1] *= -1
    return m.astype(np.float32)


def test_rules_reject_bad_input():
    with pytest.raises(ValueError, match="263"):
        rules.turn(np.zeros((10, 251)), (0, 5))
    with pytest.raises(ValueError, match="span"):
        rules.direction(np.zeros((10, 263)), (5, 20))
    with pytest.raises(ValueError, match="attribute"):
        rules.read(np.zeros((10, 263)), (0, 5), "walk", "colour")
