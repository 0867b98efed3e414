"""What a clip contains: 1 to 3 actions with their attributes and parameters, fitted to HumanML3D's length limits.

A clip's role decides what it may contain: "train" and "plain" (val/test, not compositional) clips never contain
a held-out action x value combination; a "comp" clip contains at least one, in a random segment. Only
val/test clips get the comp role, so no training clip (hence no training caption) ever shows a held-out combination.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import actions
from .schema import ACTIONS, ALLOWED, HELD_OUT, REQUIRED, compatible, held_out

MIN_ROWS, MAX_ROWS = 40, 196  # feature rows (HumanML3D keeps 40 <= T < 200; crops are at most 196)
# HumanML3D's facing quaternion flips hemisphere where the (smoothed) facing passes +-180 degrees from frame 0's, and
# its root angular velocity then changes sign for a frame, so clips never turn that far from where they start.
MAX_HEADING = np.radians(170.0)
ACTION_WEIGHTS = {"walk": 1.3, "run": 1.0, "jump": 1.2, "squat": 0.8, "kick": 1.0, "wave": 1.0, "turn": 1.0,
                  "side-step": 1.0}
SEGMENT_COUNTS = (1, 2, 3)
SEGMENT_WEIGHTS = (0.3, 0.45, 0.25)
# Probability that an optional attribute is present (speed: each of slowly/quickly).
P_SPEED = 0.3
P_OPTIONAL = {"walk": {"turn": 0.3}, "jump": {"direction": 0.45, "turn": 0.3}}
P_VALUE = {("walk", "direction"): {"forward": 0.75, "backward": 0.25},
           ("run", "direction"): {"forward": 0.85, "backward": 0.15},
           ("kick", "direction"): {"forward": 0.65, "backward": 0.35},
           ("jump", "direction"): {"forward": 0.4, "backward": 0.2, "left": 0.2, "right": 0.2}}


@dataclass
class Segment:
    action: str
    attributes: dict
    params: dict

    @property
    def frames(self) -> int:
        return self.params["frames"]


def _value(rng: np.random.Generator, action: str, attribute: str) -> str:
    probs = P_VALUE.get((action, attribute))
    values = list(probs) if probs else list(ALLOWED[action][attribute])
    p = np.array(list(probs.values())) if probs else np.ones(len(values))
    return values[int(rng.choice(len(values), p=p / p.sum()))]


def sample_attributes(rng: np.random.Generator, action: str, allow_held_out: bool,
                      force: tuple[str, str] | None = None) -> dict:
    """Attributes of one segment; `force` = (attribute, value) must be present."""
    for _ in range(100):
        attrs: dict = {}
        for attribute in REQUIRED.get(action, ()):
            attrs[attribute] = _value(rng, action, attribute)
        for attribute, p in P_OPTIONAL.get(action, {}).items():
            if rng.random() < p:
                attrs[attribute] = _value(rng, action, attribute)
        r = rng.random()
        if r < 2 * P_SPEED:
            attrs["speed"] = "slowly" if r < P_SPEED else "quickly"
        if force:
            attribute, value = force
            attrs[attribute] = value
            if action == "walk" and attribute == "turn":
                attrs["direction"] = "forward"  # walking turns are circles, walked forwards
            if action == "jump" and attribute in ("turn", "direction"):
                attrs.pop("direction" if attribute == "turn" else "turn", None)  # a jump spins or travels
        if not compatible(action, attrs):
            continue
        if not allow_held_out and held_out(action, attrs):
            continue
        return attrs
    raise RuntimeError(f"could not sample attributes for {action}")


def _actions(rng: np.random.Generator, k: int) -> list[str]:
    names = list(ACTIONS)
    w = np.array([ACTION_WEIGHTS[a] for a in names])
    out: list[str] = []
    while len(out) < k:
        a = names[int(rng.choice(len(names), p=w / w.sum()))]
        if not out or out[-1] != a:  # no action twice in a row
            out.append(a)
    return out


def plan_clip(rng: np.random.Generator, role: str) -> list[Segment]:
    """Segments of one clip whose joint frames (rows + 1) fit [MIN_ROWS + 1, MAX_ROWS + 1]."""
    for _ in range(500):
        k = int(rng.choice(SEGMENT_COUNTS, p=np.array(SEGMENT_WEIGHTS)))
        names = _actions(rng, k)
        force_at, force = -1, None
        if role == "comp":
            force_at = int(rng.integers(k))
            combo = HELD_OUT[int(rng.integers(len(HELD_OUT)))]
            names[force_at] = combo[0]
            if force_at > 0 and names[force_at - 1] == combo[0] or force_at < k - 1 and names[force_at + 1] == combo[0]:
                continue
            force = combo[1:]
        segments = []
        for i, a in enumerate(names):
            attrs = sample_attributes(rng, a, allow_held_out=role == "comp", force=force if i == force_at else None)
            segments.append(Segment(a, attrs, actions.plan(rng, a, attrs)))
        frames = sum(s.frames for s in segments)
        heading = np.cumsum([actions.yaw_change(s.action, s.params) for s in segments])
        if MIN_ROWS + 1 <= frames <= MAX_ROWS + 1 and np.abs(heading).max() <= MAX_HEADING:
            return segments
    raise RuntimeError("could not fit a clip into the length limits")
