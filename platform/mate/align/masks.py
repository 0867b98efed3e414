"""False-negative masks between word occurrences (docs/method.md §9): which pairs in a batch are not really negatives.

Judged on lemma classes with a synonym map (counterclockwise = anticlockwise = anti-clockwise), not on surface
strings; `false_negative_rate` measures that against the synthetic annotations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mate.data.captions import canonical_text

from . import words as W

if TYPE_CHECKING:
    from .items import Items


def _sets(ptr: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
    return [ids[ptr[r]:ptr[r + 1]] for r in rows]


def _incidence(sets: list[np.ndarray], vocab: np.ndarray) -> np.ndarray:
    """(len(sets), len(vocab)) float32 0/1 matrix; vocab sorted."""
    out = np.zeros((len(sets), len(vocab)), np.float32)
    for r, s in enumerate(sets):
        if len(s):
            out[r, np.searchsorted(vocab, s)] = 1.0
    return out


def same_word(items: Items, index) -> np.ndarray:
    """(B, B) bool: the two occurrences are the same word (same lemma, synonyms merged); L_align's non-negatives."""
    c = items.canon_id[np.asarray(index, np.int64)]
    return c[:, None] == c[None, :]


def same_caption(items: Items, index) -> np.ndarray:
    """(B, B) bool: the same clip, or the same caption up to case and punctuation; L_sent's non-negatives."""
    idx = np.asarray(index, np.int64)
    clip = items.clip[idx]
    text = np.array([canonical_text(items.texts[s]) for s in items.slot[idx]])
    return (clip[:, None] == clip[None, :]) | (text[:, None] == text[None, :])


def meaning_absent(items: Items, index, *, surface: bool = False) -> np.ndarray:
    """(B, B) bool for L_cross: True where w_j's meaning is absent from caption i AND w_i's from caption j.

    Judged on meaning classes (lemmas, the synonym map and multi-word forms, `mate.align.words`); `surface=True`
    judges on lowercased surface strings instead (the naive rule, for comparison). Two occurrences of the same clip
    are never absent (their motion is the same motion, whatever their captions say); the diagonal is False."""
    idx = np.asarray(index, np.int64)
    slots = items.slot[idx]
    if surface:
        word_sets = [items.surface_id[m:m + 1] for m in idx]
        cap_sets = _sets(items.cap_surf_ptr, items.cap_surf_ids, slots)
    else:
        word_sets = _sets(items.cls_ptr, items.cls_ids, idx)
        cap_sets = _sets(items.cap_cls_ptr, items.cap_cls_ids, slots)
    vocab = np.unique(np.concatenate(word_sets + cap_sets)) if len(idx) else np.zeros(0, np.int32)
    present = _incidence(cap_sets, vocab) @ _incidence(word_sets, vocab).T > 0  # [i, j]: caption i has w_j's meaning
    clip = items.clip[idx]
    return ~present & ~present.T & (clip[:, None] != clip[None, :])


def _annotation_meanings(items: Items, m: int, notes: dict) -> tuple[set, set, set]:
    """(the occurrence's annotated meanings, its caption's, its clip's) as (attribute, value) sets."""
    clip = notes.get(items.ids[items.clip[m]])
    if clip is None:
        return set(), set(), set()
    text = items.text(m)
    cap = next((c for c in clip.get("captions", ()) if c["text"] == text), None)
    motion = {("action", s["action"]) for s in clip.get("segments", ())}
    motion |= {(a, v) for s in clip.get("segments", ()) for a, v in s.get("attributes", {}).items()}
    if cap is None:
        return set(), set(), motion
    caption = {(w["attribute"], w["value"]) for w in cap.get("words", ())}
    start = int(items.char[m, 0])
    word = set()
    if W.carries_phrase_class(items.lemma(m)):
        word = {(w["attribute"], w["value"]) for w in cap.get("words", ())
                if int(w["char"]) <= start < int(w["char"]) + len(w["surface"])}
    return word, caption, motion


def false_negative_counts(items: Items, index, notes: dict, *, surface: bool = False,
                          level: str = "caption") -> tuple[int, int]:
    """(false negatives, pairs marked absent) of `meaning_absent` in one batch against the synthetic annotations.

    A pair (i, j) marked absent is a false negative when w_j's annotated value is among caption i's annotated values
    (`level="caption"`: what the caption says) or the clip's (`level="motion"`: every annotated segment's action and
    attributes, which captions need not all mention), or the same with i and j swapped. Words without an annotated
    value (function words, "circle", body-part nouns of limb forms) are never false negatives."""
    if level not in ("caption", "motion"):
        raise ValueError(f"level must be 'caption' or 'motion', got {level!r}")
    idx = np.asarray(index, np.int64)
    absent = meaning_absent(items, idx, surface=surface)
    info = [_annotation_meanings(items, int(m), notes) for m in idx]
    have = [c if level == "caption" else mo for _, c, mo in info]
    false = 0
    for i, j in zip(*np.nonzero(absent)):
        if info[j][0] & have[i] or info[i][0] & have[j]:
            false += 1
    return false, int(absent.sum())


def false_negative_rate(items: Items, index, notes: dict, *, surface: bool = False, level: str = "caption") -> float:
    """The fraction of pairs marked absent whose annotated values say the meaning IS present (`align/false_neg_rate`;
    NaN when no pair is marked absent). See `false_negative_counts`."""
    false, pairs = false_negative_counts(items, index, notes, surface=surface, level=level)
    return false / pairs if pairs else float("nan")


# ----------------------------------------------------------------------------------------------- batching
