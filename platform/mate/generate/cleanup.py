"""Foot locking: the contact clean-up that animation pipelines run on generated motion (`gen.foot_lock`).

A diffusion generator predicts the root's velocity and the legs' positions as separate feature channels, so after a
CPU-sized training budget the root outruns the legs and planted feet slide (BENCHMARKS.md, issue 12: 0.75 m/s on
the ground against 0.025 for real clips). This pass makes the motion agree with its own ground contacts:

1. the root's horizontal step becomes the step that keeps the planted feet where they are (feet weighted by how
   close they are to the floor), blended back to the generated step as the feet lift;
2. each foot that stays near the floor for 2+ frames is pinned to its mean position over that contact, the pin
   faded in and out over `ramp` frames, and the knee re-solved by two-bone IK (hip fixed, bone lengths kept, the
   knee bending the way the generated one did);
3. the root velocity, root-relative positions and joint velocities are rewritten from the corrected joints (the
   rotation and contact channels stay as generated).

It works on raw (denormalised) feature rows, never on what training sees, and is off by default so that reported
numbers match how the literature scores raw samples; BENCHMARKS.md gives both. Lengths are in the data's unit
(metres for HumanML3D).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from mate.data.features import features_to_joints, gaussian_smooth, ground_weight
from mate.data.skeleton import Skeleton, skeleton_for_dim

CONTACT_HEIGHT = 0.05  # a foot within 5 cm of the floor (HumanML3D's up axis) counts as planted
RAMP = 3  # frames over which a pin fades in and out
MAX_SLIDE = 0.2  # m: a contact whose toe wanders further is split into several pins (0.2 chosen on val)


def _facing(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    half = np.concatenate([[0.0], np.cumsum(f[:-1, 0])])
    return np.cos(2.0 * half), np.sin(2.0 * half)


def _to_local(c, s, x, z):
    """World (x, z) -> the facing frame (inverse of `features_to_joints`' rotation)."""
    return c * x + s * z, -s * x + c * z


def _legs(sk: Skeleton) -> list[tuple[int, int, int, int]]:
    parents = sk.parents
    out = []
    for ankle, toe in (sk.feet_left, sk.feet_right):
        knee = int(parents[ankle])
        out.append((int(parents[knee]), knee, ankle, toe))
    return out


def _runs(mask: np.ndarray, shortest: int) -> list[tuple[int, int]]:
    """[start, stop) of each run of True at least `shortest` long."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2]) if b - a >= shortest]


def _lock_root(j: np.ndarray, feet: list[int], floor: float, contact_height: float) -> None:
    rel = j[:, feet][..., [0, 2]] - j[:, :1, [0, 2]]
    w = ground_weight(j[:, feet, 1] - floor, contact_height)
    w = np.minimum(w[1:], w[:-1])  # planted over the whole step
    total = w.sum(1, keepdims=True)
    keep_feet = (w[..., None] * -np.diff(rel, axis=0)).sum(1) / np.maximum(total, 1e-8)
    a = np.clip(total, 0.0, 1.0)
    step = a * keep_feet + (1.0 - a) * np.diff(j[:, 0, [0, 2]], axis=0)
    root = np.concatenate([j[:1, 0, [0, 2]], j[:1, 0, [0, 2]] + np.cumsum(step, 0)])
    j[..., [0, 2]] += (root - j[:, 0, [0, 2]])[:, None]


def _pin_offsets(toe_xz: np.ndarray, height: np.ndarray, contact_height: float, ramp: int,
                 max_slide: float) -> np.ndarray:
    """(T, 2) horizontal shift that holds the toe at its mean position over each contact, faded at the ends."""
    n = len(toe_xz)
    shift, weight = np.zeros((n, 2)), np.zeros(n)
    for a, b in _runs(height < contact_height, 2):
        for p, q in _pieces(toe_xz[a:b], max_slide):
            anchor = toe_xz[a + p : a + q].mean(0)
            shift[a + p : a + q], weight[a + p : a + q] = anchor - toe_xz[a + p : a + q], 1.0
        for k in range(1, ramp + 1):
            r = 1.0 - k / (ramp + 1)
            for t, edge in ((a - k, a), (b - 1 + k, b - 1)):
                if 0 <= t < n and r > weight[t]:
                    shift[t], weight[t] = r * shift[edge], r
    return shift


def _pieces(xz: np.ndarray, max_slide: float) -> list[tuple[int, int]]:
    """Split one contact where the toe strays more than `max_slide` from where the piece began: a long, low drag
    (a shuffle, a pivot, a foot low in its swing) is several steps, and one pin would wrench the leg."""
    out, start = [], 0
    for t in range(1, len(xz)):
        if np.linalg.norm(xz[t] - xz[start]) > max_slide:
            out.append((start, t))
            start = t
    out.append((start, len(xz)))
    return out


def _two_bone(hip, knee, ankle, target):
    """Knee and ankle positions that put the ankle at `target` (clamped to reach) with the thigh and shin lengths
    and the bend plane of the given pose."""
    thigh = np.linalg.norm(knee - hip, axis=1)
    shin = np.linalg.norm(ankle - knee, axis=1)
    v = target - hip
    d = np.linalg.norm(v, axis=1)
    reach = 0.999 * (thigh + shin)
    far = d > reach
    target = target.copy()
    target[far] = hip[far] + v[far] * (reach[far] / d[far])[:, None]
    v = target - hip
    d = np.maximum(np.linalg.norm(v, axis=1), 1e-9)
    u = v / d[:, None]
    along = (thigh**2 - shin**2 + d**2) / (2.0 * d)
    out = np.sqrt(np.clip(thigh**2 - along**2, 0.0, None))
    bend = (knee - hip) - ((knee - hip) * u).sum(1, keepdims=True) * u
    norm = np.linalg.norm(bend, axis=1, keepdims=True)
    bend = np.where(norm > 1e-9, bend / np.maximum(norm, 1e-9), 0.0)
    return hip + along[:, None] * u + out[:, None] * bend, target


def _write_back(f: np.ndarray, j: np.ndarray, sk: Skeleton) -> np.ndarray:
    """`f` (2+ rows) with its root velocity, root-relative positions and joint velocities taken from joints `j`."""
    c, s = _facing(f)
    n, nj = len(f), sk.num_joints
    out = f.copy()
    step = np.diff(j[:, 0, [0, 2]], axis=0)  # the step into frame t+1 is stored on row t, in frame t+1's facing
    out[:-1, 1], out[:-1, 2] = _to_local(c[1:], s[1:], step[:, 0], step[:, 1])
    lx, lz = _to_local(c[:, None], s[:, None], j[:, 1:, 0] - j[:, :1, 0], j[:, 1:, 2] - j[:, :1, 2])
    ric_end = 4 + 3 * (nj - 1)
    out[:, 4:ric_end] = np.stack([lx, j[:, 1:, 1], lz], -1).reshape(n, -1)
    vel_start = ric_end + 6 * (nj - 1)  # joint velocities, in the facing of frame t
    d = np.diff(j, axis=0)
    vx, vz = _to_local(c[:-1, None], s[:-1, None], d[..., 0], d[..., 2])
    out[:-1, vel_start : vel_start + 3 * nj] = np.stack([vx, d[..., 1], vz], -1).reshape(n - 1, -1)
    return out


def lock_feet(features: np.ndarray, *, smooth: float = 0.0, contact_height: float = CONTACT_HEIGHT,
              ramp: int = RAMP, max_slide: float = MAX_SLIDE, skeleton: Skeleton | None = None) -> np.ndarray:
    """(T, D) raw feature rows -> the same motion with planted feet held still (module docstring); `smooth` first
    smooths the rows over time (Gaussian sigma in frames; 0: none)."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2:
        raise ValueError(f"expected (T, D) feature rows, got shape {f.shape}")
    sk = skeleton or skeleton_for_dim(f.shape[1])
    if smooth > 0:
        f = gaussian_smooth(f, smooth)
    if len(f) < 2:
        return f.astype(np.float32)
    j = features_to_joints(f, sk)
    legs = _legs(sk)
    feet = [i for leg in legs for i in leg[2:]]
    floor = float(np.percentile(j[:, feet, 1].min(1), 2))
    _lock_root(j, feet, floor, contact_height)
    for hip, knee, ankle, toe in legs:
        shift = _pin_offsets(j[:, toe, [0, 2]], j[:, toe, 1] - floor, contact_height, ramp, max_slide)
        if not shift.any():
            continue
        target = j[:, ankle].copy()
        target[:, [0, 2]] += shift
        j[:, knee], new_ankle = _two_bone(j[:, hip], j[:, knee], j[:, ankle], target)
        j[:, toe] += new_ankle - j[:, ankle]  # the foot moves rigidly with its ankle
        j[:, ankle] = new_ankle
    return _write_back(f, j, sk).astype(np.float32)


def postprocess(cfg: Mapping[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """What `gen.smooth` and `gen.foot_lock` do to each raw sampled motion (identity when both are off)."""
    smooth, lock = float(cfg["gen.smooth"]), bool(cfg["gen.foot_lock"])
    if lock:
        return lambda m: lock_feet(m, smooth=smooth)
    if smooth > 0:
        return lambda m: gaussian_smooth(m, smooth).astype(np.float32)
    return lambda m: m
