"""The action registry: for each action, how to draw its parameters and how to turn them into control channels.

`plan(rng, action, attributes)` returns JSON-able parameters whose "frames" is the action's length in joint
frames; `channels(action, params, style)` is deterministic given them. Keeping the two apart lets the clip planner
fit several actions into the length limits before any motion is computed.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import gestures, locomotion
from .channels import Channels, Style

_PLAN: dict[str, Callable[[np.random.Generator, dict], dict]] = {
    "walk": lambda rng, a: locomotion.plan_gait(rng, "walk", a),
    "run": lambda rng, a: locomotion.plan_gait(rng, "run", a),
    "side-step": lambda rng, a: locomotion.plan_gait(rng, "side-step", a),
    "turn": locomotion.plan_turn,
    "jump": gestures.plan_jump,
    "squat": gestures.plan_squat,
    "kick": gestures.plan_kick,
    "wave": gestures.plan_wave,
}
_GEN: dict[str, Callable[[dict, Style], Channels]] = {
    "walk": lambda p, s: locomotion.generate_gait("walk", p, s),
    "run": lambda p, s: locomotion.generate_gait("run", p, s),
    "side-step": lambda p, s: locomotion.generate_gait("side-step", p, s),
    "turn": locomotion.generate_turn,
    "jump": gestures.generate_jump,
    "squat": gestures.generate_squat,
    "kick": gestures.generate_kick,
    "wave": gestures.generate_wave,
}


def plan(rng: np.random.Generator, action: str, attributes: dict) -> dict:
    return _PLAN[action](rng, attributes)


def yaw_change(action: str, params: dict) -> float:
    """Net counterclockwise turn of the body over the action (radians)."""
    return float(params.get("angle", 0.0) + params.get("turn", 0.0) + params.get("spin", 0.0))


def channels(action: str, params: dict, style: Style) -> Channels:
    ch = _GEN[action](params, style)
    if ch.n != params["frames"]:
        raise AssertionError(f"{action} made {ch.n} frames, planned {params['frames']}")
    return ch
