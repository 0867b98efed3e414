"""How well a segmentation agrees with ground truth.

A `Reference` is one caption's truth: how many sub-texts it has and, for each motion word *occurrence* (a character
offset into the caption), the temporal index of the true sub-text that holds it.

- `segment/count_agreement`: the fraction of reference captions whose predicted sub-text count equals the true
  count.
- `segment/word_agreement`: over every motion-word occurrence of every reference caption (micro-average), the
  fraction whose predicted sub-text index equals its true sub-text index, where the predicted index is the
  position, in the predicted temporal order, of the predicted sub-text whose character span contains the word's
  offset (a word in no predicted sub-text counts as wrong). Because indices are compared, a word lands right only
  if its sub-text is cut where the truth cuts it AND sits at the right place in time: merging two sub-texts,
  splitting one, or listing "B after A" as [B, A] all move words to wrong indices.

Captions that have no prediction count as wrong in both measures (never silently dropped).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .base import Segmentation

# Lemmas that are content words by their POS tag but carry no motion of their own (the subject of the caption,
# and connectives that spaCy tags as adverbs).
MOTION_STOP = frozenset("""
person man woman human guy lady boy girl figure individual people character subject someone somebody
then finally first firstly next afterwards afterward later eventually subsequently lastly once before after also
""".split())
MOTION_POS = frozenset({"VERB", "NOUN", "ADJ", "ADV", "PROPN", "NUM"})


@dataclass(frozen=True)
class Reference:
    caption: str
    count: int  # the true number of sub-texts
    words: tuple[tuple[int, int], ...]  # (character offset of a motion word occurrence, its true sub-text index)


def count_agreement(predicted: Mapping[str, Segmentation], refs: Sequence[Reference]) -> float:
    if not refs:
        return float("nan")
    hits = sum(1 for r in refs if r.caption in predicted and len(predicted[r.caption].subtexts) == r.count)
    return hits / len(refs)


def word_agreement(predicted: Mapping[str, Segmentation], refs: Sequence[Reference]) -> float:
    total = hits = 0
    for r in refs:
        seg = predicted.get(r.caption)
        for offset, index in r.words:
            total += 1
            if seg is not None and seg.index_at(offset) == index:
                hits += 1
    return hits / total if total else float("nan")


def agreement(predicted: Mapping[str, Segmentation], refs: Sequence[Reference]) -> dict[str, float]:
    """The two metrics under their metric names."""
    return {"segment/count_agreement": count_agreement(predicted, refs),
            "segment/word_agreement": word_agreement(predicted, refs)}


def disagreements(predicted: Mapping[str, Segmentation],
                  refs: Sequence[Reference]) -> list[tuple[Reference, Segmentation | None]]:
    """The references a prediction gets wrong (count or any word), for reports and debugging."""
    out = []
    for r in refs:
        seg = predicted.get(r.caption)
        if seg is None or len(seg.subtexts) != r.count or any(seg.index_at(o) != k for o, k in r.words):
            out.append((r, seg))
    return out


def align_tokens(text: str, tokens: Sequence[tuple[str, str]]) -> list[tuple[int, str, str]] | None:
    """Character offsets of HumanML3D's (lemma, POS) tokens in the caption text: the token field has one token per
    alphabetic word of the text (hyphens removed), in order. Returns (offset, lemma, POS) triples, or None when the
    counts differ (then the caller falls back to the text's own words)."""
    import re

    spans = [(m.start(), m.group(0)) for m in re.finditer(r"[A-Za-z]+(?:-[A-Za-z]+)*", text)]
    if len(spans) != len(tokens):
        return None
    return [(off, lemma, pos) for (off, _), (lemma, pos) in zip(spans, tokens)]


def reference_from_subtexts(caption: str, subtexts: Sequence[str], tokens: Sequence[tuple[str, str]] | None = None,
                            ) -> Reference:
    """A Reference from expected sub-texts (exact substrings of the caption, temporal order) and, when given, the
    caption's (lemma, POS) tokens, whose VERB/NOUN/ADJ/ADV/NUM words (minus MOTION_STOP) are the motion words.

    Each expected sub-text is located at its first occurrence not claimed by an earlier one. Motion words outside
    every expected sub-text (none, in a well-made fixture) are left out of the reference.
    """
    from .base import FUNCTION_WORDS, words

    spans: list[tuple[int, int]] = []
    for sub in subtexts:
        start = 0
        while True:
            at = caption.find(sub, start)
            if at < 0:
                raise ValueError(f"expected sub-text {sub!r} is not in the caption {caption!r}")
            if not any(a < at + len(sub) and at < b for a, b in spans):
                break
            start = at + 1
        spans.append((at, at + len(sub)))
    aligned = align_tokens(caption, tokens) if tokens else None
    if aligned is not None:
        motion = [off for off, lemma, pos in aligned if pos in MOTION_POS and lemma.lower() not in MOTION_STOP]
    else:
        motion = [s for w, s, _ in words(caption) if w not in FUNCTION_WORDS and w not in MOTION_STOP]
    out = []
    for off in motion:
        for k, (a, b) in enumerate(spans):
            if a <= off < b:
                out.append((off, k))
                break
    return Reference(caption, len(subtexts), tuple(out))


def summary_line(metrics: Mapping[str, float], refs: Iterable[Reference]) -> str:
    refs = list(refs)
    words_ = sum(len(r.words) for r in refs)
    return (f"agreement with ground truth over {len(refs)} captions: count {metrics['segment/count_agreement']:.3f}, "
            f"words {metrics['segment/word_agreement']:.3f} ({words_} motion words)")
