"""Physical probes: read a segment's turn, direction, speed and limb back from its 263-dim features.

These are simple physics, not learned models, so they also score generated motion (later issues reuse them). They
work in the body's own facing frame, measured from the hips and shoulders in the relative positions (ric): the root
rotation in HumanML3D features is the facing smoothed with a 1-second Gaussian, which lags behind a turn and leaks
into neighbouring segments, so the rules add back the (unsmoothed) offset between the two.

Conventions (also in meta.json): features[:, 0] is negative while the body turns counterclockwise seen from above;
a positive yaw is counterclockwise; the body's frame has x = left, z = forward.
"""

from __future__ import annotations

import numpy as np

from .schema import NORMAL_SPEED

FPS = 20.0
_RIC = slice(4, 67)
_L_HIP, _R_HIP, _L_SH, _R_SH = 1, 2, 16, 17
_L_ANKLE, _R_ANKLE, _L_WRIST, _R_WRIST = 7, 8, 20, 21
LOCOMOTION = ("walk", "run", "side-step")

# Speed class boundaries (slowly | normal | quickly) of each action's tempo signal (see `tempo`).
SPEED_THRESHOLDS = {
    "walk": (0.95, 1.48),  # m/s of the pelvis
    "run": (2.5, 3.5),
    "side-step": (0.45, 0.78),
    "turn": (105.0, 230.0),  # deg/s of the body's facing while it turns
    "squat": (0.315, 0.485),  # m/s of the pelvis, vertically
    "jump": (0.325, 0.53),  # m/s, mean speed of the joints relative to the pelvis
    "kick": (0.78, 1.3),  # m/s of the faster ankle relative to the pelvis
    "wave": (0.9, 1.38),  # m/s of the faster wrist relative to the pelvis
}


def _features(features) -> np.ndarray:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 263:
        raise ValueError(f"expected (T, 263) HumanML3D features, got shape {f.shape}")
    return f


def _ric(f: np.ndarray) -> np.ndarray:
    """(T, 22, 3) joints relative to the root xz in the smoothed root frame (the root itself at (0, y, 0))."""
    ric = f[:, _RIC].reshape(len(f), 21, 3)
    root = np.zeros((len(f), 1, 3))
    root[:, 0, 1] = f[:, 3]
    return np.concatenate([root, ric], 1)


def _rotate(a: np.ndarray, xz: np.ndarray) -> np.ndarray:
    """Rotate (x, z) vectors (..., 2) by yaw `a` (...) counterclockwise about +y."""
    c, s = np.cos(a), np.sin(a)
    return np.stack([c * xz[..., 0] + s * xz[..., 1], -s * xz[..., 0] + c * xz[..., 1]], -1)


def facing(features) -> np.ndarray:
    """(T,) the body's facing angle per row (radians, counterclockwise positive, unwrapped, row 0 = 0 up to offset)."""
    f = _features(features)
    root = np.concatenate([[0.0], np.cumsum(-2.0 * f[:-1, 0])])
    ric = _ric(f)
    across = (ric[:, _R_HIP] - ric[:, _L_HIP]) + (ric[:, _R_SH] - ric[:, _L_SH])
    offset = np.arctan2(across[:, 2], -across[:, 0])  # across points to the body's right: (-cos a, sin a)
    return root + offset


def body_velocity(features) -> np.ndarray:
    """(T, 2) per-row pelvis displacement (x left, z forward) in the body's own facing frame, metres per row."""
    f = _features(features)
    root = np.concatenate([[0.0], np.cumsum(-2.0 * f[:-1, 0])])
    off = facing(f) - root
    nxt = np.concatenate([off[1:], off[-1:]])  # the features' velocity is in the facing of the next frame
    return _rotate(-nxt, f[:, 1:3])


def body_pose(features) -> np.ndarray:
    """(T, 22, 3) joints relative to the pelvis in the body's facing frame (facing-independent pose)."""
    f = _features(features)
    root = np.concatenate([[0.0], np.cumsum(-2.0 * f[:-1, 0])])
    off = facing(f) - root
    ric = _ric(f)
    ric[..., 1] -= f[:, 3:4]
    xz = _rotate(-off[:, None], ric[..., [0, 2]])
    return np.stack([xz[..., 0], ric[..., 1], xz[..., 1]], -1)


def _span(f: np.ndarray, span) -> tuple[int, int]:
    s, e = (0, len(f)) if span is None else (int(span[0]), int(span[1]))
    if not 0 <= s < e <= len(f):
        raise ValueError(f"span {span} is outside the clip's {len(f)} rows")
    return s, e


def turn(features, span=None) -> str:
    """clockwise / counterclockwise: the sign of the body's net yaw change over the segment."""
    f = _features(features)
    s, e = _span(f, span)
    yaw = facing(f)
    return "counterclockwise" if yaw[min(e, len(f) - 1)] - yaw[s] > 0 else "clockwise"


def direction(features, span=None) -> str:
    """forward / backward / left / right: the pelvis's travel accumulated in the body's own facing frame."""
    f = _features(features)
    s, e = _span(f, span)
    dx, dz = body_velocity(f)[s:e].sum(0)
    if abs(dz) >= abs(dx):
        return "forward" if dz > 0 else "backward"
    return "left" if dx > 0 else "right"


def _path_speed(pose: np.ndarray) -> np.ndarray:
    """(T-1, ...) speed (m/s) of points whose positions are (T, ..., 3)."""
    return np.linalg.norm(np.diff(pose, axis=0), axis=-1) * FPS


def tempo(features, span, action: str) -> float:
    """The rate that tells an action's speed class apart (units in SPEED_THRESHOLDS)."""
    f = _features(features)
    s, e = _span(f, span)
    if action in LOCOMOTION:
        a, b = s + (e - s) // 4, e - (e - s) // 4  # the steady middle half, past starting and stopping
        return float(np.linalg.norm(body_velocity(f)[a:b], axis=-1).mean() * FPS)
    if action == "turn":
        rate = np.abs(np.diff(facing(f)[s:min(e + 1, len(f))]))
        active = rate >= 0.25 * rate.max()  # while turning, however long the segment stands still around it
        return float(np.degrees(rate[active].mean()) * FPS)
    if action == "squat":
        return float(np.abs(np.diff(f[s:min(e + 1, len(f)), 3])).mean() * FPS)
    pose = body_pose(f)[s:min(e + 1, len(f))]
    if action == "jump":
        return float(_path_speed(pose).mean())
    joints = (_L_ANKLE, _R_ANKLE) if action == "kick" else (_L_WRIST, _R_WRIST)
    return float(_path_speed(pose[:, joints]).mean(0).max())


def speed(features, span, action: str) -> str:
    """quickly / slowly / normal, from the action's tempo against its thresholds."""
    lo, hi = SPEED_THRESHOLDS[action]
    v = tempo(features, span, action)
    return "slowly" if v < lo else "quickly" if v > hi else NORMAL_SPEED


def limb(features, span, action: str) -> str:
    """left / right: which wrist (wave) or ankle (kick) travels further relative to the pelvis."""
    f = _features(features)
    s, e = _span(f, span)
    pose = body_pose(f)[s:min(e + 1, len(f))]
    left, right = (_L_WRIST, _R_WRIST) if action == "wave" else (_L_ANKLE, _R_ANKLE)
    path = _path_speed(pose[:, [left, right]]).sum(0)
    return "left" if path[0] > path[1] else "right"


def read(features, span, action: str, attribute: str) -> str:
    """The value of `attribute` that the probe reads from a segment of `action`."""
    if attribute == "turn":
        return turn(features, span)
    if attribute == "direction":
        return direction(features, span)
    if attribute == "speed":
        return speed(features, span, action)
    if attribute == "limb":
        return limb(features, span, action)
    raise ValueError(f"no physical rule for attribute {attribute!r} (turn, direction, speed, limb)")
