"""One clip end to end: plan, motion, HumanML3D features, recovered joints, captions and ground truth.

Each clip draws from its own generators seeded by (seed, clip index, stream), so a clip is the same whichever
worker makes it and in whatever order: the corpus is byte-identical for a seed with any number of workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..features import features_to_joints, joints_to_features
from . import actions
from .captions import captions
from .channels import Channels, Style
from .feet import runs
from .motion import build_joints
from .plan import plan_clip
from .schema import held_out

STREAM_PLAN, STREAM_STYLE, STREAM_TEXT = 0, 1, 2


@dataclass
class Clip:
    features: np.ndarray  # (T, 263) float32
    joints: np.ndarray  # (T, 22, 3) float32, recovered from the features
    lines: list[str]  # caption lines in HumanML3D's format
    annotation: dict  # see corpus.py for the schema
    raw_joints: np.ndarray  # (T + 1, 22, 3) float64, the forward-kinematics positions the features came from


def rng_for(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, index, stream])


def stance_intervals(stance: np.ndarray, rows: int) -> dict[str, list[list[int]]]:
    """{left, right: [[start, end), ...]} feature rows where that foot (ankle and toe) is planted."""
    out = {}
    for side, name in ((0, "left"), (1, "right")):
        starts, ends = runs(stance[:rows, side])
        out[name] = [[int(a), int(b)] for a, b in zip(starts, ends)]
    return out


def make_clip(seed: int, index: int, role: str, clip_id: str, split: str) -> Clip:
    """role: "train", "plain" (val/test) or "comp" (val/test with a held-out combination)."""
    segments = plan_clip(rng_for(seed, index, STREAM_PLAN), role)
    style = Style.sample(rng_for(seed, index, STREAM_STYLE))
    ch = Channels.concat([actions.channels(s.action, s.params, style) for s in segments])
    raw = build_joints(ch, style)
    features = joints_to_features(raw)
    rows = len(features)
    joints = features_to_joints(features).astype(np.float32)

    bounds = np.concatenate([[0], np.cumsum([s.frames for s in segments])])
    bounds[-1] = rows  # the last joint frame only feeds the last row's velocities
    seg_ann = []
    for k, s in enumerate(segments):
        entry = {"action": s.action, "attributes": dict(sorted(s.attributes.items())),
                 "span": [int(bounds[k]), int(bounds[k + 1])]}
        combos = held_out(s.action, s.attributes)
        if combos:
            entry["held_out"] = [list(c) for c in combos]
        seg_ann.append(entry)

    caps = captions(rng_for(seed, index, STREAM_TEXT), [(s.action, s.attributes) for s in segments])
    cap_ann, lines = [], []
    for c in caps:
        for st in c["subtexts"]:
            st["span"] = seg_ann[st["segment"]]["span"]
        cap_ann.append({"text": c["text"], "template": c["template"], "order": c["order"],
                        "reordered": c["order"] != sorted(c["order"]), "subtexts": c["subtexts"],
                        "words": c["words"]})
        lines.append(f"{c['text']}#{c['tokens']}#0.0#0.0")
    annotation = {"id": clip_id, "length": rows, "split": split, "compositional": role == "comp",
                  "segments": seg_ann, "stance": stance_intervals(ch.stance, rows), "captions": cap_ann}
    return Clip(features, joints, lines, annotation, raw)
