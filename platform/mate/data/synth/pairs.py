"""Minimal pairs: two captions that differ in exactly one motion word, for word-level discrimination measures.

An antonym pair swaps a turn/direction/speed/limb form for a form of the opposite value ("quickly" -> "slowly",
"to the left" -> "to the right", "left hand" -> "right hand"); a synonym pair swaps it for another form of the same
value ("quickly" -> "rapidly", "counterclockwise" -> "anti-clockwise"). Pairs come from val/test captions only and
only swap to motions the corpus can contain. A pair is compositional when the action x value combination of either
side is held out of training; antonym pairs are balanced to about half compositional.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from .schema import ANTONYMS, HELD_OUT_SET, compatible
from .vocab import find_form, forms

PAIR_ATTRIBUTES = ("turn", "direction", "speed", "limb")
ANTONYMS_PER_CLIP = 1.25  # antonym pairs per val/test clip (half compositional, when there are enough)
SYNONYMS_PER_CLIP = 0.3


def _swaps(rng: np.random.Generator, ann: dict, ci: int, w: dict, kind: str):
    seg = ann["segments"][w["segment"]]
    action, attribute, value = seg["action"], w["attribute"], w["value"]
    new_value = ANTONYMS[attribute][value] if kind == "antonym" else value
    if not compatible(action, {**seg["attributes"], attribute: new_value}):
        return None
    form = find_form(attribute, value, w["surface"])
    cap = ann["captions"][ci]
    verb_at = min((x["char"] for x in cap["words"] if x["attribute"] == "action" and x["segment"] == w["segment"]),
                  default=0)
    pre = attribute == "speed" and w["char"] < verb_at  # an adverb before the verb stays one that can stand there
    options = forms(attribute, new_value, group=form.group, pre=pre)
    options = tuple(f for f in options if f.text != form.text)
    if kind == "antonym":
        options = tuple(f for f in options if f.kind == form.kind) or options
    if not options:
        return None
    new = options[int(rng.integers(len(options)))]
    text = cap["text"]
    pair = {"kind": kind, "attribute": attribute, "value_a": value, "value_b": new_value, "word_a": w["surface"],
            "word_b": new.text, "char": w["char"], "text_a": text,
            "text_b": text[:w["char"]] + new.text + text[w["char"] + len(w["surface"]):], "length": ann["length"],
            "split": ann["split"], "compositional": (action, attribute, value) in HELD_OUT_SET
            or (action, attribute, new_value) in HELD_OUT_SET, "clip": ann["id"], "caption": ci,
            "segment": w["segment"], "span": seg["span"], "action": action}
    if form.hard_case or new.hard_case:
        pair["hard_case"] = form.hard_case or new.hard_case
    return pair


def candidates(rng: np.random.Generator, ann: dict) -> list[dict]:
    """Every antonym and synonym swap of every motion word in one clip's captions."""
    out = []
    for ci, cap in enumerate(ann["captions"]):
        for w in cap["words"]:
            if w["attribute"] in PAIR_ATTRIBUTES:
                for kind in ("antonym", "synonym"):
                    p = _swaps(rng, ann, ci, w, kind)
                    if p is not None:
                        out.append(p)
    return out


def _spread(rng: np.random.Generator, cands: list[dict], m: int) -> list[dict]:
    """m candidates taken round-robin over clips (in a random order), so pairs cover many clips."""
    by_clip: dict[str, list[dict]] = defaultdict(list)
    for c in cands:
        by_clip[c["clip"]].append(c)
    clips = sorted(by_clip)
    rng.shuffle(clips)
    queues = [[by_clip[c][i] for i in rng.permutation(len(by_clip[c]))] for c in clips]
    out: list[dict] = []
    depth = 0
    while len(out) < m and any(len(q) > depth for q in queues):
        out += [q[depth] for q in queues if len(q) > depth][: m - len(out)]
        depth += 1
    return out


def minimal_pairs(seed: int, annotations: list[dict]) -> list[dict]:
    """The pairs of a corpus from its annotations (val/test clips only), deterministic for a seed."""
    rng = np.random.default_rng([seed, 1_000_003])
    held = [a for a in annotations if a["split"] in ("val", "test")]
    cands, seen = [], set()
    for ann in held:
        for p in candidates(rng, ann):
            key = (p["text_a"], p["text_b"])
            if key not in seen:
                seen.add(key)
                cands.append(p)
    ant = [p for p in cands if p["kind"] == "antonym"]
    half = min(math.ceil(ANTONYMS_PER_CLIP * len(held) / 2), sum(p["compositional"] for p in ant),
               sum(not p["compositional"] for p in ant))
    chosen = _spread(rng, [p for p in ant if p["compositional"]], half)
    chosen += _spread(rng, [p for p in ant if not p["compositional"]], half)
    chosen += _spread(rng, [p for p in cands if p["kind"] == "synonym"], math.ceil(SYNONYMS_PER_CLIP * len(held)))
    return sorted(chosen, key=lambda p: (p["clip"], p["caption"], p["char"], p["kind"]))
