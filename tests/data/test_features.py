"""HumanML3D's motion representation, checked against real HumanML3D data we did not produce (clip 012314)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mate.data.features import canonicalize, features_to_joints, gaussian_smooth, joints_to_features, mirror_features
from mate.data.quaternion import qinv, qrot, qyaw
from mate.data.skeleton import KIT, T2M

GROUPS = T2M.feature_slices()


def test_feature_layout_matches_humanml3d():
    # 263 = root rot vel (1) + root lin vel xz (2) + root y (1) + ric 21x3 + 6D rot 21x6 + local vel 22x3 + feet 4
    assert T2M.feature_dim == 263 and KIT.feature_dim == 251
    expected = {"root_rot_vel": (0, 1), "root_lin_vel": (1, 3), "root_y": (3, 4), "ric": (4, 67),
                "rot": (67, 193), "vel": (193, 259), "contacts": (259, 263)}
    assert {k: (s.start, s.stop) for k, s in GROUPS.items()} == expected


def load_sample(hml_sample):
    feats = np.load(hml_sample / "new_joint_vecs" / "012314.npy")
    joints = np.load(hml_sample / "new_joints" / "012314.npy")
    assert feats.shape == (170, 263) and joints.shape == (170, 22, 3)
    return feats, joints


def test_recover_joints_from_real_features(hml_sample):
    feats, joints = load_sample(hml_sample)
    recovered = features_to_joints(feats)
    assert recovered.shape == (170, 22, 3) and recovered.dtype == np.float32
    assert np.abs(recovered - joints).max() < 1e-4


def test_recover_torch_batch_matches_numpy(hml_sample):
    feats, _ = load_sample(hml_sample)
    batch = torch.from_numpy(np.stack([feats, feats[::-1].copy()]))
    out = features_to_joints(batch)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 170, 22, 3)
    assert torch.allclose(out[0], torch.from_numpy(features_to_joints(feats)), atol=1e-6)
    assert torch.allclose(out[1], torch.from_numpy(features_to_joints(feats[::-1].copy())), atol=1e-6)


# Rows whose facing-smoothing window (Gaussian, sigma 20, radius 80 frames) lies inside the 170 shipped joint frames
# match to float32 precision. HumanML3D computed the features from 171 frames; the 171st is not shipped, so from row
# 90 on the smoothed facing (which rotates ric, rot, the root velocities and the joint velocities) sees a different
# edge. Root height and contacts do not depend on the facing and match exactly everywhere.
TIGHT = {"root_rot_vel": 1e-5, "root_lin_vel": 1e-5, "root_y": 1e-6, "ric": 1e-5, "rot": 5e-5, "vel": 1e-5,
         "contacts": 0.0}
EDGE = {"root_rot_vel": 1e-3, "root_lin_vel": 1e-3, "root_y": 1e-6, "ric": 1e-2, "rot": 2e-2, "vel": 1e-3,
        "contacts": 0.0}


@pytest.mark.parametrize("group", list(GROUPS))
def test_features_from_real_joints_match_shipped_rows(hml_sample, group):
    feats, joints = load_sample(hml_sample)
    ours = joints_to_features(joints)  # canonical placement is a no-op on HumanML3D's own joints
    assert ours.shape == (169, 263)
    sl = GROUPS[group]
    assert np.abs(ours[:90, sl] - feats[:90, sl]).max() <= TIGHT[group]
    assert np.abs(ours[90:169, sl] - feats[90:169, sl]).max() <= EDGE[group]


def test_rebuilding_the_unshipped_frame_matches_every_row(hml_sample):
    """The 171st frame follows from row 169's joint velocities; with it all 170 rows match (the edge is the cause)."""
    feats, joints = load_sample(hml_sample)
    f64 = feats.astype(np.float64)
    facing = qyaw(2 * f64[:-1, 0].sum())  # the facing of frame 169, integrated from the root's angular velocity
    vel = f64[-1, GROUPS["vel"]].reshape(22, 3)
    last = joints[-1] + qrot(np.broadcast_to(qinv(facing), (22, 4)), vel)
    ours = joints_to_features(np.concatenate([joints, last[None]]), canonical=False)
    for name, sl in GROUPS.items():
        assert np.abs(ours[:, sl] - feats[:, sl]).max() <= TIGHT[name], name


def test_features_invariant_to_placement(hml_sample):
    """Any yaw, translation and floor offset of the input gives the same features (canonicalisation)."""
    _, joints = load_sample(hml_sample)
    base = joints_to_features(joints)
    rng = np.random.default_rng(0)
    for _ in range(3):
        yaw = qyaw(rng.uniform(-np.pi, np.pi))
        moved = qrot(np.broadcast_to(yaw, joints.shape[:-1] + (4,)), joints.astype(np.float64))
        moved = moved + np.array([rng.uniform(-5, 5), rng.uniform(-1, 1), rng.uniform(-5, 5)])
        assert np.abs(joints_to_features(moved) - base).max() < 1e-4


@pytest.mark.parametrize("seed", range(6))
def test_round_trip_joints_features_joints(hml_sample, seed):
    """Joints -> 263 -> joints within 1e-4 m on reshaped real motion (time-warped, turned, shifted, cropped)."""
    _, joints = load_sample(hml_sample)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(41, 170))
    t = np.sort(rng.uniform(0, 169, n))
    warped = np.stack([np.stack([np.interp(t, np.arange(170), joints[:, j, d]) for d in range(3)], -1)
                       for j in range(22)], 1)
    yaw = qyaw(rng.uniform(-np.pi, np.pi))
    warped = qrot(np.broadcast_to(yaw, warped.shape[:-1] + (4,)), warped) + rng.normal(0, 2, 3) * [1, 0, 1]
    placed = canonicalize(warped)
    back = features_to_joints(joints_to_features(warped))
    assert back.shape == (n - 1, 22, 3)
    assert np.abs(back - placed[:-1]).max() < 1e-4


def test_kit_round_trip():
    """KIT-ML's 21-joint, 251-dim variant reads back the positions it was made from."""
    rng = np.random.default_rng(1)
    rest = np.zeros((21, 3))
    for chain in KIT.chains:
        for p, c in zip(chain[:-1], chain[1:]):
            rest[c] = rest[p] + KIT.raw_offsets[c] * 0.25
    rest[:, 1] += 1.0
    frames = 60
    wobble = np.cumsum(rng.normal(0, 0.005, (frames, 21, 3)), axis=0)
    walk = np.linspace(0, 1.5, frames)[:, None, None] * np.array([0.3, 0, 1.0])
    joints = rest[None] + wobble + walk
    feats = joints_to_features(joints, KIT)
    assert feats.shape == (frames - 1, 251)
    back = features_to_joints(feats, KIT)
    assert back.shape == (frames - 1, 21, 3)
    assert np.abs(back - canonicalize(joints, KIT)[:-1]).max() < 1e-4


def test_contacts_follow_the_feet():
    """A foot that stays put is in contact; one that moves 10 cm a frame is not (HumanML3D's 0.002 m^2 rule)."""
    rest = np.zeros((22, 3))
    for chain in T2M.chains:
        for p, c in zip(chain[:-1], chain[1:]):
            rest[c] = rest[p] + T2M.offsets[c]
    rest[:, 1] -= rest[:, 1].min()
    frames = np.repeat(rest[None], 30, 0)
    frames[:, list(T2M.feet_right)] += np.arange(30)[:, None, None] * np.array([0, 0, 0.1])
    contacts = joints_to_features(frames, canonical=False)[:, GROUPS["contacts"]]
    assert (contacts[:, :2] == 1).all() and (contacts[:, 2:] == 0).all()


def test_gaussian_smooth_matches_reference_formula():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    sigma, radius = 3.0, 12
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    w /= w.sum()
    idx = np.clip(np.arange(50)[:, None] + np.arange(-radius, radius + 1)[None], 0, 49)
    expected = (x[idx] * w[None, :, None]).sum(1)
    assert np.allclose(gaussian_smooth(x, sigma), expected, atol=1e-12)


def test_bad_shapes_are_clear_errors():
    with pytest.raises(ValueError, match=r"\(T\+1, 22, 3\)"):
        joints_to_features(np.zeros((10, 21, 3)))
    with pytest.raises(ValueError, match="263"):
        features_to_joints(np.zeros((10, 100), dtype=np.float32))


def test_the_skeletons_mirror_pairs_left_and_right_joints():
    names = dict(enumerate(T2M.joint_names))
    for j, m in enumerate(T2M.mirror):
        assert names[int(m)] == names[j].replace("left", "@").replace("right", "left").replace("@", "right")
    # 16 joints move: legs 2 x 5, arms 2 x 3
    assert (KIT.mirror[KIT.mirror] == np.arange(21)).all() and (KIT.mirror != np.arange(21)).sum() == 16


@pytest.mark.parametrize("skeleton", ["humanml3d", "kit"])
def test_mirrored_features_are_the_features_of_the_mirrored_joints(hml_sample, skeleton):
    """Every group (rotations and contacts included) agrees with features recomputed from mirrored positions, on
    real HumanML3D motion and on a turning, walking KIT body; mirroring twice is the identity."""
    if skeleton == "humanml3d":
        _, joints = load_sample(hml_sample)
        sk = T2M
    else:
        sk, rng = KIT, np.random.default_rng(2)
        rest = np.zeros((21, 3))
        for chain in KIT.chains:
            for p, c in zip(chain[:-1], chain[1:]):
                rest[c] = rest[p] + KIT.raw_offsets[c] * 0.25
        t = np.arange(80)[:, None, None]
        yaw = qyaw(np.linspace(0, 1.2, 80))[:, None]
        joints = qrot(np.broadcast_to(yaw, (80, 21, 4)), rest[None] + rng.normal(0, 0.02, (80, 21, 3)))
        joints = joints + t * np.array([0.01, 0, 0.02]) + [0, 1.0, 0]
    feats = joints_to_features(joints, sk, canonical=False)
    mirrored = joints_to_features(joints[:, sk.mirror] * np.array([-1.0, 1.0, 1.0]), sk, canonical=False)
    ours = mirror_features(feats, sk)
    assert np.abs(ours - feats).max() > 0.1  # the motion is not its own mirror image
    for name, sl in sk.feature_slices().items():
        assert np.abs(ours[:, sl] - mirrored[:, sl]).max() < 1e-4, name
    assert np.array_equal(mirror_features(ours, sk), feats)

