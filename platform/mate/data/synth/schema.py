"""The attribute list (one list everywhere: annotations, probes, metrics), which values each action takes, and the
action x value combinations held out of training for the compositional splits.

Conventions: `turn` is seen from above (counterclockwise = a positive rotation about +y = turning to the body's
left); `direction` is the direction of travel in the body's facing frame (left = the body's left, +x); `speed`
absent from a segment's attributes means normal speed; `limb` is the hand (wave) or leg (kick) that moves.
"""

from __future__ import annotations

ACTIONS = ("walk", "run", "jump", "squat", "kick", "wave", "turn", "side-step")
ATTRIBUTES = ("action", "turn", "direction", "speed", "limb")
VALUES = {
    "action": ACTIONS,
    "turn": ("clockwise", "counterclockwise"),
    "direction": ("forward", "backward", "left", "right"),
    "speed": ("quickly", "slowly"),
    "limb": ("left", "right"),
}
NORMAL_SPEED = "normal"  # what the speed rule returns for a segment without a speed attribute

ANTONYMS = {
    "turn": {"clockwise": "counterclockwise", "counterclockwise": "clockwise"},
    "direction": {"forward": "backward", "backward": "forward", "left": "right", "right": "left"},
    "speed": {"quickly": "slowly", "slowly": "quickly"},
    "limb": {"left": "right", "right": "left"},
}

# Attribute values each action can carry (speed: any action; "normal" is the absence of the attribute).
ALLOWED = {
    "walk": {"direction": ("forward", "backward"), "turn": VALUES["turn"]},
    "run": {"direction": ("forward", "backward")},
    "jump": {"direction": VALUES["direction"], "turn": VALUES["turn"]},
    "squat": {},
    "kick": {"direction": ("forward", "backward"), "limb": VALUES["limb"]},
    "wave": {"limb": VALUES["limb"]},
    "turn": {"turn": VALUES["turn"]},
    "side-step": {"direction": ("left", "right")},
}
for _a in ALLOWED.values():
    _a["speed"] = VALUES["speed"]

# Attributes every segment of the action has (the others are optional or, for speed, absent = normal).
REQUIRED = {"walk": ("direction",), "run": ("direction",), "kick": ("direction", "limb"), "wave": ("limb",),
            "turn": ("turn",), "side-step": ("direction",)}

# Never in a training clip (so never in a training caption): val_comp/test_comp hold the clips that have them.
HELD_OUT = (
    ("jump", "turn", "counterclockwise"),
    ("kick", "direction", "backward"),
    ("run", "speed", "slowly"),
    ("wave", "limb", "left"),
    ("side-step", "speed", "quickly"),
)
HELD_OUT_SET = frozenset(HELD_OUT)


def held_out(action: str, attributes: dict) -> list[tuple[str, str, str]]:
    """The held-out combinations a segment (action + attribute dict) contains."""
    return [(action, k, v) for k, v in sorted(attributes.items()) if (action, k, v) in HELD_OUT_SET]


def allowed(action: str, attribute: str, value: str) -> bool:
    """Whether the corpus can contain `action` with that attribute value (pairs only swap to possible motions)."""
    if attribute == "action":
        return value in ACTIONS
    return value in ALLOWED.get(action, {}).get(attribute, ())


def compatible(action: str, attributes: dict) -> bool:
    """Combinations the generators realise: walking turns only when walking forward (a circle), and a jump either
    travels or spins, not both."""
    if action == "walk" and "turn" in attributes and attributes.get("direction") != "forward":
        return False
    if action == "jump" and "turn" in attributes and "direction" in attributes:
        return False
    return all(allowed(action, k, v) for k, v in attributes.items())
