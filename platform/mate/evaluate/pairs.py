"""Minimal pairs on any dataset (`probe/pair_*`): a split's own captions with one motion word swapped for its antonym,
scored pair-relatively on the generated motion, so no annotation and no calibration to a corpus is needed.

Building (`build_pairs`): every caption of the split is searched for the words of the lexicon below (spelling variants
included: counter-clockwise, anticlockwise, forwards, leftward, ...). A caption gives at most one pair per antonym
group, and none for a group it names twice (e.g. "left ... right", whose swap would contradict itself). `left` /
`right` are read in context: before a limb noun (hand, arm, leg, foot, ...) they are the limb that moves; after a turn
verb (turns, rotates, pivots, spins) or "circle" within four words, the sense of the turn; otherwise the side the
body travels to.

Scoring (`score`): text a and its twin b are sampled with the same seed and lengths; the pair is right when a reading
of the two motions is ordered as the words say. The readings, on the whole motion, in the body's own facing frame
(`mate.data.synth.rules`, which are plain physics of the HumanML3D features):
  - turn: the net change of the body's facing (counterclockwise positive); "clockwise" (or "turn right") must turn
    less counterclockwise than its twin;
  - direction: net travel along the facing (forward/backward) or across it (left/right);
  - speed: mean speed of all joints (m/s, global), so a quick walk and a quick wave both count;
  - limb: the left limb's path length minus the right one's (wrists for hand/arm words, ankles for leg/foot words);
  - height: mean height of the pelvis and both wrists ("down" lower than "up").
A pair is right only when the difference has the expected sign (a tie is wrong): chance is 50%, unlike the annotated
probes (`probe/word_pair_acc`, 25% for two values), which must read each motion's absolute value.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mate.data.synth import rules

from .probes import joints, sample_pairs

ATTRIBUTES = ("turn", "direction", "speed", "limb", "height")

# antonym groups: word -> (its antonym, the pole it names); the first pole is the one whose reading is larger
_TURN = {"clockwise": ("counterclockwise", "cw"), "counterclockwise": ("clockwise", "ccw"),
         "counter-clockwise": ("clockwise", "ccw"), "anticlockwise": ("clockwise", "ccw"),
         "anti-clockwise": ("clockwise", "ccw"), "counter clockwise": ("clockwise", "ccw")}
_FORE_AFT = {"forward": ("backward", "fore"), "forwards": ("backwards", "fore"), "ahead": ("backward", "fore"),
             "backward": ("forward", "aft"), "backwards": ("forwards", "aft")}
_SIDE = {"left": ("right", "left"), "right": ("left", "right"), "leftward": ("rightward", "left"),
         "leftwards": ("rightwards", "left"), "rightward": ("leftward", "right"), "rightwards": ("leftwards", "right")}
_PACE = {"quickly": ("slowly", "fast"), "fast": ("slowly", "fast"), "swiftly": ("slowly", "fast"),
         "rapidly": ("slowly", "fast"), "briskly": ("slowly", "fast"), "quick": ("slow", "fast"),
         "slowly": ("quickly", "slow"), "slow": ("fast", "slow"), "unhurriedly": ("quickly", "slow"),
         "leisurely": ("quickly", "slow")}
_HEIGHT = {"up": ("down", "up"), "upward": ("downward", "up"), "upwards": ("downwards", "up"),
           "down": ("up", "down"), "downward": ("upward", "down"), "downwards": ("upwards", "down")}
GROUPS = {"turn": _TURN, "fore_aft": _FORE_AFT, "side": _SIDE, "pace": _PACE, "height": _HEIGHT}
# the pole whose reading must be the larger of the two
_HIGH = {"ccw", "fore", "left", "fast", "up"}

_ARM_NOUNS = {"hand", "hands", "arm", "arms", "wrist", "wrists", "elbow", "palm", "fist", "shoulder"}
_LEG_NOUNS = {"leg", "legs", "foot", "feet", "knee", "knees", "ankle", "heel", "toe", "toes"}
_TURN_VERBS = {"turn", "turns", "turning", "turned", "rotate", "rotates", "rotating", "rotated", "spin", "spins",
               "spinning", "pivot", "pivots", "pivoting", "pivoted", "twist", "twists", "twisting"}
_WORD = re.compile(r"counter clockwise|[a-z]+(?:-[a-z]+)*", re.IGNORECASE)


@dataclass(frozen=True)
class Swap:
    """One antonym swap found in a caption: which characters, the new word, and what to read."""

    start: int
    end: int
    new: str
    attribute: str  # one of ATTRIBUTES
    reading: str    # the name of the reading in READINGS
    sign: int       # +1: text a's reading must be the larger; -1: the smaller


def _limb_reading(noun: str) -> str:
    return "limb_arms" if noun in _ARM_NOUNS else "limb_legs"


def find_swaps(text: str) -> list[Swap]:
    """The swaps a caption allows, at most one per antonym group (none for a group it names twice)."""
    words = [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]
    found: list[Swap] = []
    for group, lexicon in GROUPS.items():
        hits = [(i, w, s, e) for i, (w, s, e) in enumerate(words) if w in lexicon]
        if len(hits) != 1:
            continue
        i, w, s, e = hits[0]
        new, pole = lexicon[w]
        sign = 1 if pole in _HIGH else -1
        if group == "turn":
            attribute, reading = "turn", "yaw"
        elif group == "fore_aft":
            attribute, reading = "direction", "travel_forward"
        elif group == "pace":
            attribute, reading = "speed", "speed"
        elif group == "height":
            attribute, reading = "height", "height"
        else:
            after = words[i + 1][0] if i + 1 < len(words) else ""
            before = {x for x, _, _ in words[max(0, i - 4):i]}
            if after in _ARM_NOUNS or after in _LEG_NOUNS:
                attribute, reading = "limb", _limb_reading(after)
            elif before & (_TURN_VERBS | {"circle", "circles"}):  # "strides in a circle to the right" turns
                attribute, reading = "turn", "yaw"  # turning to the left is counterclockwise seen from above
            else:
                attribute, reading = "direction", "travel_left"
        if text[s:e][:1].isupper():
            new = new[:1].upper() + new[1:]
        found.append(Swap(s, e, new, attribute, reading, sign))
    return found


def build_pairs(items: Sequence[dict], n: int | None = None, seed: int = 0) -> list[dict]:
    """Pairs from (id, text, length) items; capped to n by a seeded subset (kept in item order)."""
    pairs = []
    for it in items:
        text = it["text"]
        for sw in find_swaps(text):
            pairs.append({"clip": it["id"], "length": int(it["length"]), "text_a": text,
                          "text_b": text[:sw.start] + sw.new + text[sw.end:], "attribute": sw.attribute,
                          "reading": sw.reading, "sign": sw.sign})
    if n is not None and n < len(pairs):
        keep = np.sort(np.random.default_rng([seed, 15_485_863]).permutation(len(pairs))[:max(n, 0)])
        pairs = [pairs[i] for i in keep]
    return pairs


# -- readings ---------------------------------------------------------------------------------------------------------

def _yaw(f: np.ndarray) -> float:
    a = rules.facing(f)
    return float(a[-1] - a[0])


def _travel(f: np.ndarray, axis: int) -> float:
    return float(rules.body_velocity(f)[:, axis].sum())


def _speed(f: np.ndarray) -> float:
    j = joints(f)
    return float(np.linalg.norm(np.diff(j, axis=0), axis=-1).mean() * rules.FPS) if len(j) > 1 else 0.0


def _limb(f: np.ndarray, left: int, right: int) -> float:
    path = np.linalg.norm(np.diff(rules.body_pose(f)[:, [left, right]], axis=0), axis=-1).sum(0)
    return float(path[0] - path[1])


def _height(f: np.ndarray) -> float:
    return float(joints(f)[:, [0, 20, 21], 1].mean())


READINGS: dict[str, Callable[[np.ndarray], float]] = {
    "yaw": _yaw,                                   # radians, counterclockwise positive
    "travel_forward": lambda f: _travel(f, 1),      # metres along the facing
    "travel_left": lambda f: _travel(f, 0),         # metres to the body's left
    "speed": _speed,                               # m/s, mean over joints and frames
    "limb_arms": lambda f: _limb(f, 20, 21),        # metres of path, left wrist - right wrist
    "limb_legs": lambda f: _limb(f, 7, 8),          # left ankle - right ankle
    "height": _height,                             # metres, pelvis and wrists
}


def read(features, reading: str) -> float:
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != 263 or len(f) < 2 or not np.isfinite(f).all():
        return float("nan")
    return READINGS[reading](f)


def score(pairs: Sequence[dict], motions_a: Sequence, motions_b: Sequence) -> dict[str, float]:
    """`probe/pair_acc`, `probe/pair_acc_<attribute>` for attributes present, and `probe/pair_count`."""
    if not len(pairs) == len(motions_a) == len(motions_b):
        raise ValueError(f"{len(pairs)} pairs, {len(motions_a)} motions for text_a, {len(motions_b)} for text_b")
    hits = np.array([p["sign"] * (read(a, p["reading"]) - read(b, p["reading"])) > 0
                     for p, a, b in zip(pairs, motions_a, motions_b)], dtype=bool)
    out = {"probe/pair_count": float(len(pairs))}
    if len(pairs):
        out["probe/pair_acc"] = float(hits.mean())
    for attribute in ATTRIBUTES:
        m = np.array([p["attribute"] == attribute for p in pairs], dtype=bool)
        if m.any():
            out[f"probe/pair_acc_{attribute}"] = float(hits[m].mean())
    return out


def pair_accuracy(items: Sequence[dict], sample, seed: int, n: int | None = None,
                  batch_size: int | None = None, subset_seed: int | None = None) -> dict[str, float]:
    """Build the split's pairs from its (id, text, length) items (a subset of n chosen by `subset_seed`, else
    `seed`) and score a sampler on them, sampled as `probes.word_pair_accuracy` samples (`probes.sample_pairs`)."""
    chosen = build_pairs(items, n, seed if subset_seed is None else subset_seed)
    return score(chosen, *sample_pairs(chosen, sample, seed, batch_size))
