"""Foot locking (`gen.foot_lock`) on HumanML3D's real clip: it must agree with HumanML3D's feature layout, pin sliding
feet without stretching the legs, and leave motion that already stands on its feet nearly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from mate.config import ConfigError, resolve
from mate.data.features import features_to_joints
from mate.data.skeleton import T2M
from mate.evaluate.probes import foot_skate
from mate.generate.cleanup import _write_back, lock_feet, postprocess

RIC, ROT, VEL, CONTACTS = slice(4, 67), slice(67, 193), slice(193, 259), slice(259, 263)
LEGS = ((1, 4, 7), (2, 5, 8))  # hip, knee, ankle


@pytest.fixture(scope="module")
def real(hml_sample) -> np.ndarray:
    return np.load(hml_sample / "new_joint_vecs" / "012314.npy").astype(np.float32)


def _sliding(f: np.ndarray, factor: float = 1.8) -> np.ndarray:
    """The bench generator's failure (BENCHMARKS.md): a root that outruns its legs, here 1.8x the real one."""
    out = f.copy()
    out[:, 1:3] *= factor
    return out


def _bones(f: np.ndarray) -> np.ndarray:
    j = features_to_joints(f)
    return np.stack([np.linalg.norm(j[:, a] - j[:, b], axis=-1) for hip, knee, ankle in LEGS
                     for a, b in ((hip, knee), (knee, ankle))], -1)


def test_rewriting_the_channels_from_recovered_joints_gives_humanml3d_own_rows(real):
    # HumanML3D wrote these rows from its joints; recovering the joints and writing the root velocity, positions and
    # joint velocities back must give the same numbers, or every locked motion would carry a layout error.
    out = _write_back(real.astype(np.float64), features_to_joints(real.astype(np.float64)), T2M)
    for sl in (slice(1, 3), RIC, VEL):
        assert np.abs(out[:-1, sl] - real[:-1, sl]).max() < 1e-5


def test_sliding_feet_are_pinned_without_stretching_the_legs(real):
    slid = _sliding(real)
    assert foot_skate(slid) > 5 * foot_skate(real)  # the injected fault is there
    locked = lock_feet(slid)
    assert locked.shape == slid.shape and locked.dtype == np.float32 and np.isfinite(locked).all()
    assert foot_skate(locked) <= max(2 * foot_skate(real), 0.02)
    assert np.abs(_bones(locked) - _bones(slid)).max() < 1e-4
    # only positions and velocities change: the rotations and the contact labels stay as generated
    assert np.array_equal(locked[:, ROT], slid[:, ROT]) and np.array_equal(locked[:, CONTACTS], slid[:, CONTACTS])
    # the arms and spine keep their pose relative to the root
    rel = lambda f: features_to_joints(f) - features_to_joints(f)[:, :1]  # noqa: E731
    upper = [3, 6, 9, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]
    assert np.abs(rel(locked)[:, upper] - rel(slid)[:, upper]).max() < 1e-4


def test_motion_that_stands_on_its_feet_barely_moves(real):
    locked = lock_feet(real)
    rel = lambda f: features_to_joints(f) - features_to_joints(f)[:, :1]  # noqa: E731
    moved = np.linalg.norm(rel(locked) - rel(real), axis=-1)
    assert moved.mean() < 0.01 and moved.max() < 0.25
    steps = lambda f: np.linalg.norm(f[:, 1:3], axis=1).sum()  # noqa: E731
    assert abs(steps(locked) / steps(real) - 1) < 0.15  # the root travels about as far
    assert foot_skate(locked) <= foot_skate(real) + 1e-6


def test_smoothing_and_short_or_bad_input(real):
    smooth = lock_feet(real, smooth=2.0)
    assert np.abs(np.diff(smooth[:, RIC], 2, axis=0)).mean() < np.abs(np.diff(real[:, RIC], 2, axis=0)).mean()
    assert lock_feet(real[:1]).shape == (1, 263)
    with pytest.raises(ValueError, match=r"\(T, D\)"):
        lock_feet(real[None])


def test_the_config_keys_drive_the_sampler_postprocess(real):
    slid = _sliding(real)
    assert postprocess(resolve({}, profile="tiny"))(slid) is slid  # off: raw samples, as papers score them
    locked = postprocess(resolve({"gen.foot_lock": True}, profile="tiny"))(slid)
    assert np.array_equal(locked, lock_feet(slid))
    smoothed = postprocess(resolve({"gen.smooth": 1.5}, profile="tiny"))(slid)
    assert smoothed.dtype == np.float32 and not np.array_equal(smoothed, slid)
    with pytest.raises(ConfigError, match="gen.smooth.*at least 0"):
        resolve({"gen.smooth": -1.0})
