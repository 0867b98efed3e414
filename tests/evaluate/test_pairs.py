"""Minimal pairs on any dataset (`probe/pair_*`): antonym swaps found in captions, readings that agree with the real
HumanML3D clip's own joint positions, and pair-relative scoring on transformations of that clip whose answer is known
(its mirror image turns the other way, every second frame moves twice as fast, played backwards it travels back)."""

from __future__ import annotations

import numpy as np
import pytest

from mate.data.features import joints_to_features, mirror_features
from mate.evaluate.pairs import build_pairs, find_swaps, read, score


def _swapped(text: str) -> list[tuple[str, str, str, int]]:
    return [(text[:s.start] + s.new + text[s.end:], s.attribute, s.reading, s.sign) for s in find_swaps(text)]


@pytest.mark.parametrize(("text", "expected"), [
    ("a man turns counter-clockwise", [("a man turns clockwise", "turn", "yaw", 1)]),
    ("someone rotates anticlockwise", [("someone rotates clockwise", "turn", "yaw", 1)]),
    ("a person spins counter clockwise", [("a person spins clockwise", "turn", "yaw", 1)]),
    ("a person turns clockwise", [("a person turns counterclockwise", "turn", "yaw", -1)]),
    ("the man turns to the left", [("the man turns to the right", "turn", "yaw", 1)]),
    ("she strides in a circle to the right", [("she strides in a circle to the left", "turn", "yaw", -1)]),
    ("a figure side-steps to the right", [("a figure side-steps to the left", "direction", "travel_left", -1)]),
    ("someone sidesteps leftward", [("someone sidesteps rightward", "direction", "travel_left", 1)]),
    ("a woman waves her left hand", [("a woman waves her right hand", "limb", "limb_arms", 1)]),
    ("kicks with the right leg", [("kicks with the left leg", "limb", "limb_legs", -1)]),
    ("The man walks backwards", [("The man walks forwards", "direction", "travel_forward", -1)]),
    ("Slowly a person squats down", [("Quickly a person squats down", "speed", "speed", -1),
                                      ("Slowly a person squats up", "height", "height", -1)]),
    ("walks left and then right", []),          # the side named twice: a swap would contradict the caption
    ("a person walks in place", []),
])
def test_swaps_follow_the_lexicon_and_the_context(text, expected):
    assert _swapped(text) == expected


def test_pairs_are_capped_by_a_seeded_subset_in_item_order():
    items = [{"id": f"c{i}", "text": f"a person walks {w}", "length": 40 + i}
             for i, w in enumerate(["forward", "quickly", "backward", "slowly", "in place", "up"] * 4)]
    every = build_pairs(items)
    assert len(every) == 20 and every[0]["text_b"] == "a person walks backward" and every[0]["length"] == 40
    some = build_pairs(items, n=7, seed=3)
    assert len(some) == 7 and some == build_pairs(items, n=7, seed=3) and some != build_pairs(items, n=7, seed=4)
    order = [every.index(p) for p in some]
    assert order == sorted(order)


@pytest.fixture(scope="module")
def clip(hml_sample):
    f = np.load(hml_sample / "new_joint_vecs" / "012314.npy").astype(np.float64)
    j = np.load(hml_sample / "new_joints" / "012314.npy").astype(np.float64)
    return f, j


def _facing(j: np.ndarray) -> np.ndarray:
    """The body's facing straight from the joint positions (hips and shoulders), counterclockwise positive."""
    across = (j[:, 2] - j[:, 1]) + (j[:, 17] - j[:, 16])  # to the body's right
    return np.unwrap(np.arctan2(across[:, 2], -across[:, 0]))


def _travel(j: np.ndarray) -> tuple[float, float]:
    """(forward, left) metres of the pelvis, each frame's step taken in that frame's facing."""
    a, step = _facing(j)[:-1], np.diff(j[:, 0, [0, 2]], axis=0)
    forward = np.stack([np.sin(a), np.cos(a)], -1)
    left = np.stack([np.cos(a), -np.sin(a)], -1)
    return float((step * forward).sum()), float((step * left).sum())


@pytest.mark.parametrize(("start", "end"), [(18, 42), (60, 100), (0, 170)])
def test_readings_agree_with_the_real_clips_joint_positions(clip, start, end):
    f, j = clip
    seg, joints = f[start:end], j[start:end + 1]
    facing = _facing(joints)
    assert np.degrees(read(seg, "yaw")) == pytest.approx(np.degrees(facing[-1] - facing[0]), abs=4.0)
    forward, left = _travel(joints)
    assert read(seg, "travel_forward") == pytest.approx(forward, abs=0.15)
    assert read(seg, "travel_left") == pytest.approx(left, abs=0.15)
    assert read(seg, "height") == pytest.approx(j[start:end, [0, 20, 21], 1].mean(), abs=1e-4)
    speed = np.linalg.norm(np.diff(j[start:end], axis=0), axis=-1).mean() * 20
    assert read(seg, "speed") == pytest.approx(speed, rel=1e-4)


def test_where_the_real_clip_is_unambiguous_the_readings_say_so(clip):
    f, _ = clip
    assert np.degrees(read(f[18:42], "yaw")) > 150   # a counterclockwise spin of about half a turn
    assert np.degrees(read(f[60:100], "yaw")) < -60  # then it turns back clockwise...
    assert read(f[60:100], "travel_forward") < -1.2  # ...while stepping backwards over a metre


def _pair(text_a: str, text_b: str, attribute: str, reading: str, sign: int) -> dict:
    return {"clip": "012314", "length": 170, "text_a": text_a, "text_b": text_b, "attribute": attribute,
            "reading": reading, "sign": sign}


def test_pairs_are_scored_relatively_on_transformed_real_motion(clip):
    f, j = clip
    mirror = mirror_features(f.astype(np.float32))
    twice_as_fast = joints_to_features(j[::2].copy())
    backwards = joints_to_features(j[::-1].copy())
    turn = _pair("a person turns counterclockwise", "a person turns clockwise", "turn", "yaw", 1)
    arms = _pair("waves the left hand", "waves the right hand", "limb", "limb_arms", 1)
    fast = _pair("walks quickly", "walks slowly", "speed", "speed", 1)
    back = _pair("walks backward", "walks forward", "direction", "travel_forward", -1)
    assert read(f, "yaw") > 0 and read(f, "limb_arms") < 0  # the clip turns counterclockwise, its right hand moves more
    # frames 70-105 step backwards; the same frames played backwards step forwards
    right = score([turn, fast, back], [f, twice_as_fast, f[70:105]], [mirror, f, backwards[64:99]])
    assert right == {"probe/pair_count": 3.0, "probe/pair_acc": 1.0, "probe/pair_acc_turn": 1.0,
                     "probe/pair_acc_speed": 1.0, "probe/pair_acc_direction": 1.0}
    swapped = score([turn, arms, fast, back], [mirror, f, f, backwards[64:99]], [f, mirror, twice_as_fast, f[70:105]])
    assert swapped["probe/pair_acc"] == 0.0 and swapped["probe/pair_acc_limb"] == 0.0
    # a tie or a motion that cannot be read is wrong, never right
    broken = f.copy()
    broken[5, 0] = np.nan
    assert score([turn, turn], [f, broken], [f, mirror])["probe/pair_acc"] == 0.0
    with pytest.raises(ValueError, match="2 pairs, 1 motions"):
        score([turn, turn], [f], [f, f])
