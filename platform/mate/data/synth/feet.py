"""Footprints and swing paths: where each foot is planted, and how it travels between two plants.

A foot planted over frames [a, b) is placed where the pelvis will be halfway through that stance (plus the stance
width and any per-action offset), facing the way the pelvis then faces. Anchoring at mid-stance makes the pelvis
pass over the planted foot, as in real gait, for any speed, direction or turn, so walking, running, side-stepping,
turning on the spot and landing a jump all come out of one rule. Between two plants the ankle eases from one
footprint to the next along an arc; the position is fixed while planted, so a planted foot cannot slide.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .channels import Channels, Style
from .kinematics import ANKLE_HEIGHT, SIDE_SIGN, yaw_vec


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends [a, b) of the runs of True in a 1-D bool array."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.diff(m.astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


@dataclass
class FeetPlan:
    ankle: np.ndarray  # (n, 2, 3) ankle targets before the pelvis-following term
    foot_yaw: np.ndarray  # (n, 2)
    tau: np.ndarray  # (n, 2) swing progress in (0, 1); 0 on planted frames
    prev: np.ndarray  # (n, 2) int, last planted frame at or before t
    next: np.ndarray  # (n, 2) int, first planted frame at or after t


def _angle_lerp(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    d = (b - a + np.pi) % (2 * np.pi) - np.pi
    return a + d * s


def plan_feet(root_xz: np.ndarray, yaw: np.ndarray, ch: Channels, style: Style) -> FeetPlan:
    n = len(yaw)
    idx = np.arange(n)
    ankle = np.zeros((n, 2, 3))
    foot_yaw = np.zeros((n, 2))
    tau = np.zeros((n, 2))
    prev = np.zeros((n, 2), int)
    nxt = np.zeros((n, 2), int)
    for side in (0, 1):
        st = ch.stance[:, side]
        if not (st[0] and st[-1]):
            raise ValueError("a clip must start and end with both feet planted")
        starts, ends = runs(st)
        mid = (starts + ends - 1) // 2
        neutral = np.array([SIDE_SIGN[side] * style.width, 0.0])
        local = neutral + ch.offset[mid, side]
        prints = root_xz[mid] + yaw_vec(yaw[mid], local)  # (r, 2)
        print_yaw = yaw[mid] + SIDE_SIGN[side] * style.toe_out
        run_id = np.cumsum(np.isin(idx, starts)) - 1  # run index of each frame's latest plant
        last = np.maximum.accumulate(np.where(st, idx, -1))
        first = np.minimum.accumulate(np.where(st, idx, n)[::-1])[::-1]
        a_run, b_run = run_id[last], run_id[first]
        s_raw = np.where(st, 0.0, (idx - last) / np.maximum(first - last, 1))
        s = s_raw * s_raw * (3 - 2 * s_raw)  # cubic ease: a swing foot's speed peaks at 1.5x its mean
        xz = prints[a_run] + (prints[b_run] - prints[a_run]) * s[:, None]
        extra = ch.extra[:, side] * (~st)[:, None]
        xz = xz + yaw_vec(yaw, extra[:, [0, 2]])
        y = ANKLE_HEIGHT + ch.lift[:, side] * np.sin(np.pi * s_raw) + extra[:, 1]
        ankle[:, side] = np.stack([xz[:, 0], y, xz[:, 1]], -1)
        foot_yaw[:, side] = _angle_lerp(print_yaw[a_run], print_yaw[b_run], s)
        tau[:, side], prev[:, side], nxt[:, side] = s_raw, last, first
    return FeetPlan(ankle, foot_yaw, tau, prev, nxt)
