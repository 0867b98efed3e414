"""Physical plausibility of the synthetic motion: rigid bones, planted feet that do not slide, smooth transitions,
exact round trips through HumanML3D's features, and the sign convention of the root angular velocity."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mate.data.features import features_to_joints, joints_to_features
from mate.data.skeleton import T2M
from mate.data.synth import actions
from mate.data.synth.channels import Channels, Style
from mate.data.synth.clip import make_clip
from mate.data.synth.motion import build_joints
from mate.data.synth.rules import tempo

FEET = {"left": (7, 10), "right": (8, 11)}


def _clips(root):
    for line in (root / "annotations.jsonl").read_text().splitlines():
        a = json.loads(line)
        yield a, np.load(root / "new_joints" / f"{a['id']}.npy").astype(np.float64)


def test_bone_lengths_are_constant(tiny_corpus):
    parents = T2M.parents
    for a, j in _clips(tiny_corpus):
        lengths = np.linalg.norm(j[:, 1:] - j[:, parents[1:]], axis=-1)
        assert np.abs(lengths - T2M.bone_lengths[1:]).max() < 1e-4, a["id"]


@pytest.mark.parametrize("seed", range(8))
def test_round_trip_through_features(seed):
    for index in range(4):
        clip = make_clip(seed, index, ("train", "comp")[index % 2], "x", "train")
        raw = clip.raw_joints  # forward kinematics, T+1 frames
        back = features_to_joints(joints_to_features(raw))
        assert back.shape == (len(raw) - 1, 22, 3)
        assert np.abs(back - raw[:-1]).max() < 1e-4, (seed, index)


def test_planted_feet_do_not_slide_and_touch_the_floor(tiny_corpus):
    planted_rows = 0
    for a, j in _clips(tiny_corpus):
        lowest = np.full(len(j), np.inf)
        in_stance = np.zeros(len(j), bool)
        for side, (ankle, toe) in FEET.items():
            intervals = a["stance"][side]
            assert intervals and intervals[0][0] == 0, "every clip starts on both feet"
            for s, e in intervals:
                feet = j[s:e][:, [ankle, toe]]
                step = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
                assert step.size == 0 or step.max() < 0.01, (a["id"], side, s, e)  # < 1 cm per frame
                lowest[s:e] = np.minimum(lowest[s:e], feet[..., 1].min(-1))
                in_stance[s:e] = True
        assert np.abs(lowest[in_stance]).max() < 0.02, a["id"]  # the planted foot is on the floor
        assert j[..., 1].min() > -0.02  # nothing goes through it
        planted_rows += in_stance.sum()
    assert planted_rows > 0


def test_transitions_are_smooth(tiny_corpus):
    for a, j in _clips(tiny_corpus):
        step = np.linalg.norm(np.diff(j, axis=0), axis=-1).max(-1)  # fastest joint, metres per frame
        assert step.max() < 0.6, a["id"]  # < 12 m/s anywhere (a sprinting foot)
        for g in a["segments"][1:]:
            b = g["span"][0]
            assert step[b - 2:b + 2].max() < 0.05, (a["id"], b)  # no jump where one action hands over to the next


def test_realistic_speeds(tiny_corpus):
    speeds: dict[str, list[float]] = {"walk": [], "run": []}
    for a, _ in _clips(tiny_corpus):
        f = np.load(tiny_corpus / "new_joint_vecs" / f"{a['id']}.npy")
        for g in a["segments"]:
            if g["action"] in speeds and "speed" not in g["attributes"]:
                speeds[g["action"]].append(tempo(f, g["span"], g["action"]))
    assert 1.0 < np.median(speeds["walk"]) < 1.45  # ~1.2 m/s
    assert 2.6 < np.median(speeds["run"]) < 3.4  # ~3 m/s


@pytest.mark.parametrize("turn, sign", [("counterclockwise", -1.0), ("clockwise", 1.0)])
def test_root_angular_velocity_sign(turn, sign):
    """HumanML3D's dim 0 is negative while the body turns counterclockwise (a positive yaw about +y)."""
    rng = np.random.default_rng(0)
    style = Style.sample(rng)
    p = actions.plan(rng, "turn", {"turn": turn})
    ch = Channels.concat([Channels.idle(10, style), actions.channels("turn", p, style), Channels.idle(60, style)])
    j = build_joints(ch, style)
    f = joints_to_features(j)
    assert np.sign(f[:, 0].sum()) == sign
    assert f[:, 0].sum() == pytest.approx(-p["angle"] / 2, abs=0.05)  # half the yaw, HumanML3D's convention
    # and counterclockwise really is towards the body's left (+x): the pelvis's forward direction swings to +x
    hips = j[:, 2] - j[:, 1]  # left hip -> right hip points to the body's right
    fwd_end = np.cross([0.0, 1.0, 0.0], hips[-1])
    assert np.sign(fwd_end[0]) == -sign


def test_feet_are_the_lowest_joints_when_standing(tiny_corpus):
    a, j = next(iter(_clips(tiny_corpus)))
    assert np.argmin(j[0, :, 1]) in (10, 11)  # toes on the floor, ankles above
    assert 0.03 < j[0, [7, 8], 1].min() < 0.08
    assert 0.85 < j[0, 0, 1] < 1.0  # pelvis height of a standing adult
