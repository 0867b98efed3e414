"""From a clip's control channels to joint positions: integrate the pelvis, plant the feet, solve the legs.

The pelvis path is the integral of the actions' facing-frame velocities and yaw rates (so consecutive actions join
smoothly). Its height is the actions' height profile, lowered wherever a planted foot would otherwise be out of
the leg's reach and smoothed under that cap, so every planted foot stays reachable and the two-bone IK holds it
exactly still.
"""

from __future__ import annotations

import numpy as np

from ..features import canonicalize
from .channels import Channels, Style
from .feet import plan_feet
from .kinematics import ANKLE_HEIGHT, HIP_OFFSET, LEG_MAX, assemble, hip_positions, yaw_vec

REACH = 0.995  # planted legs extend to at most this fraction of thigh + shin
STAND_BEND = 0.99  # standing legs at this fraction (knees soft)
ARM_SWING = 0.55  # radians of arm flexion at full stride (times the action's and the style's gain)


def standing_height(style: Style) -> float:
    """Pelvis height of a neutral stance: the shorter leg at STAND_BEND of its length below its hip."""
    lat = style.width - np.abs(HIP_OFFSET[:, 0])
    vert = np.sqrt((STAND_BEND * LEG_MAX) ** 2 - lat**2)
    return float(np.min(ANKLE_HEIGHT + vert - HIP_OFFSET[:, 1]))


def _blur(y: np.ndarray, sigma: float = 1.5, radius: int = 4) -> np.ndarray:
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return np.lib.stride_tricks.sliding_window_view(np.pad(y, radius, mode="edge"), 2 * radius + 1) @ (k / k.sum())


def _capped_smooth(want: np.ndarray, cap: np.ndarray, rounds: int = 3) -> np.ndarray:
    """A smooth curve close to `want` that never exceeds `cap` (blur, then cap again, a few times)."""
    y = np.minimum(want, cap)
    for _ in range(rounds):
        y = np.minimum(_blur(y), cap)
    return y


def build_joints(ch: Channels, style: Style) -> np.ndarray:
    """(n, 22, 3) joint positions for the whole clip's channels (n joint frames), in HumanML3D's placement.

    The placement (`features.canonicalize`: floor at 0, frame 0's root at the origin facing +z by HumanML3D's
    hip-and-shoulder rule) is applied here, so joints_to_features leaves these joints where they are.
    """
    n = ch.n
    yaw = np.concatenate([[0.0], np.cumsum(ch.yaw_rate)[:-1]])
    mid_yaw = yaw + 0.5 * ch.yaw_rate
    steps = yaw_vec(mid_yaw, ch.vel)
    root_xz = np.concatenate([[[0.0, 0.0]], np.cumsum(steps, 0)[:-1]])
    feet = plan_feet(root_xz, yaw, ch, style)

    # Pelvis height: wanted profile, capped so each planted ankle stays within REACH of its hip.
    want = standing_height(style) + ch.height
    hips = hip_positions(np.stack([root_xz[:, 0], np.zeros(n), root_xz[:, 1]], -1), yaw)
    cap = np.full(n, np.inf)
    for side in (0, 1):
        dh = np.linalg.norm(hips[:, side, [0, 2]] - feet.ankle[:, side, [0, 2]], axis=-1)
        reach = np.sqrt(np.maximum((REACH * LEG_MAX[side]) ** 2 - dh**2, 0.0025))
        limit = feet.ankle[:, side, 1] + reach - HIP_OFFSET[side, 1]
        cap = np.where(ch.stance[:, side], np.minimum(cap, limit), cap)
    root_y = _capped_smooth(want, cap)

    # Feet in the air during a jump rise and fall with the pelvis.
    ankle = feet.ankle.copy()
    for side in (0, 1):
        s = feet.tau[:, side]
        base = root_y[feet.prev[:, side]] * (1 - s) + root_y[feet.next[:, side]] * s
        ankle[:, side, 1] += ch.follow[:, side] * np.maximum(root_y - base, 0.0)

    # Arms swing against the legs: each arm forward when the opposite foot is ahead (in the pelvis frame).
    fwd = np.stack([np.sin(yaw), np.cos(yaw)], -1)
    ahead = ((ankle[:, 1, [0, 2]] - ankle[:, 0, [0, 2]]) * fwd).sum(-1)  # right foot ahead of left, metres
    arms = ch.arms.copy()
    gain = ch.swing * style.swing * ARM_SWING * np.tanh(_blur(ahead, sigma=2.0) / 0.45)  # bounded, unhurried
    arms[:, 0, 0] += gain
    arms[:, 1, 0] -= gain

    root = np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], -1)
    return canonicalize(assemble(root, yaw, ch.lean + style.lean, ch.roll, arms, ankle, feet.foot_yaw, ch.pitch))

