"""The per-frame control channels an action writes, and the curve helpers the actions build them from.

An action does not place joints: it says how the pelvis moves in its own facing frame, how high it rides, when each
foot is planted, and how the torso and arms are posed. The clip builder (`motion.py`) turns a sequence of these into
footprints and joints. Every action starts and ends standing still on both feet in the neutral pose, so consecutive
actions join without jumps in position or velocity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FPS = 20.0
G = 9.81


@dataclass
class Style:
    """Per-clip body style, drawn once per clip so clips are not all the same person standing the same way."""

    width: float  # lateral distance of each planted ankle from the pelvis (m)
    toe_out: float  # outward heading of each foot (rad)
    arm_abd: float  # resting arm abduction (rad)
    elbow: float  # resting elbow flexion (rad)
    lean: float  # resting forward lean of the spine (rad)
    swing: float  # arm-swing gain while walking (how much this person swings the arms)

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "Style":
        return cls(width=rng.uniform(0.085, 0.11), toe_out=rng.uniform(0.04, 0.14), arm_abd=rng.uniform(0.08, 0.18),
                   elbow=rng.uniform(0.12, 0.3), lean=rng.uniform(0.0, 0.06), swing=rng.uniform(0.7, 1.0))


@dataclass
class Channels:
    """Controls for n joint frames of one action (see module docstring); arrays are float64 unless noted."""

    vel: np.ndarray  # (n, 2) pelvis velocity in the facing frame (x left, z forward), metres per frame
    yaw_rate: np.ndarray  # (n,) radians per frame, counterclockwise seen from above
    height: np.ndarray  # (n,) pelvis height relative to standing (m); the builder may lower it to keep feet reachable
    stance: np.ndarray  # (n, 2) bool, left/right foot planted
    lift: np.ndarray  # (n, 2) swing arc height of each foot (m)
    extra: np.ndarray  # (n, 2, 3) swing-foot offset in the facing frame (m), e.g. a kick's reach
    offset: np.ndarray  # (n, 2, 2) a plant's shift from its neutral spot (facing frame x, z), read at mid-plant
    follow: np.ndarray  # (n, 2) 1 where a swinging foot rises and falls with the pelvis (jumps)
    pitch: np.ndarray  # (n, 2) extra toe pitch (rad), pointed feet in the air
    lean: np.ndarray  # (n,) forward spine lean (rad), added to the style's
    roll: np.ndarray  # (n,) sideways spine lean (rad)
    arms: np.ndarray  # (n, 2, 4) arm angles (flex, abduct, elbow, bend_up), absolute
    swing: np.ndarray  # (n,) arm-swing gain factor (0 standing, 1 walking)

    @property
    def n(self) -> int:
        return len(self.yaw_rate)

    @classmethod
    def idle(cls, n: int, style: Style) -> "Channels":
        arms = np.zeros((n, 2, 4))
        arms[..., 0] = 0.05
        arms[..., 1] = style.arm_abd
        arms[..., 2] = style.elbow
        z = np.zeros
        return cls(vel=z((n, 2)), yaw_rate=z(n), height=z(n), stance=np.ones((n, 2), bool), lift=z((n, 2)),
                   extra=z((n, 2, 3)), offset=z((n, 2, 2)), follow=z((n, 2)), pitch=z((n, 2)), lean=z(n), roll=z(n),
                   arms=arms, swing=z(n))

    @classmethod
    def concat(cls, parts: list["Channels"]) -> "Channels":
        return cls(**{f: np.concatenate([getattr(p, f) for p in parts]) for f in cls.__dataclass_fields__})


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C2 ease from 0 to 1 on [0, 1] (zero velocity and acceleration at both ends)."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6 * x - 15) + 10)


def envelope(n: int, a: float, b: float, ramp: float) -> np.ndarray:
    """(n,) 0 before a, eased up to 1 over `ramp` frames, 1 until b - ramp, eased down to 0 at b."""
    t = np.arange(n, dtype=np.float64)
    ramp = max(min(ramp, (b - a) / 2), 1e-6)
    return smoothstep((t - a) / ramp) * smoothstep((b - t) / ramp)


def keyframes(n: int, times, values, slopes=None) -> np.ndarray:
    """(n,) cubic Hermite curve through (time, value) keys with given slopes (per frame; default 0), held outside."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    slopes = np.zeros_like(values) if slopes is None else np.asarray(slopes, dtype=np.float64)
    t = np.arange(n, dtype=np.float64)
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    t0, t1 = times[k], times[k + 1]
    h = np.maximum(t1 - t0, 1e-9)
    s = np.clip((t - t0) / h, 0.0, 1.0)
    h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * values[k] + h10 * h * slopes[k] + h01 * values[k + 1] + h11 * h * slopes[k + 1]


def spread(n: int, total, weights: np.ndarray) -> np.ndarray:
    """Per-frame increments (n, ...) that add up to `total`, distributed like `weights` (n,)."""
    w = weights / max(weights.sum(), 1e-12)
    return np.multiply.outer(w, np.asarray(total, dtype=np.float64))


def swing_mask(n: int, starts, length: float) -> np.ndarray:
    """(n,) bool, True on the frames [round(s), round(s + length)) for each start."""
    m = np.zeros(n, bool)
    for s in starts:
        a, b = int(round(s)), int(round(s + length))
        m[max(a, 1):min(b, n - 1)] = True  # first and last frames always stay planted
    return m


def jitter(rng: np.random.Generator, value: float, rel: float) -> float:
    return float(value * rng.uniform(1 - rel, 1 + rel))
