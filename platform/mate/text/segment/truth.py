"""Ground-truth segmentation of the synthetic corpus, read from `<dataset>/annotations.jsonl`.

One JSON object a clip (written by `mate.data.synth`): `id`, `segments` ([{action, attributes, span}], frame order)
and `captions`, each with its `text`, `subtexts` ([{text, segment, chars: [start, end)}], reading order) and motion
`words` ([{surface, char, attribute, value, segment}]). A caption's true sub-texts in temporal order are its
sub-texts sorted by segment index; a motion word's true index is the rank of its segment among them.

A caption that occurs in several clips is taken from its first clip (the corpus writes identical sentences only
for identical segment structures). A caption without annotation falls back to the rules (reason `no_truth`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from mate.cache import file_sha256

from .agreement import Reference
from .base import Segmentation, Segmenter, SubText
from .rules import RuleSegmenter

ANNOTATIONS = "annotations.jsonl"


class TruthError(ValueError):
    """The dataset has no (readable) ground truth."""


def _caption_truth(cap: dict, where: str) -> tuple[Segmentation, Reference]:
    text = cap["text"]
    subs = sorted(cap["subtexts"], key=lambda s: (s["segment"], s["chars"][0]))
    segments = sorted({s["segment"] for s in subs})
    rank = {seg: i for i, seg in enumerate(segments)}
    subtexts = []
    for s in subs:
        a, b = (int(x) for x in s["chars"])
        if text[a:b] != s["text"]:
            raise TruthError(f"{where}: sub-text {s['text']!r} is not at chars [{a}, {b}) of {text!r}")
        subtexts.append(SubText(s["text"], a, b))
    seg = Segmentation(text, tuple(subtexts), "truth")
    words = []
    for w in cap.get("words", ()):
        if w["segment"] in rank:
            words.append((int(w["char"]), rank[w["segment"]]))
    return seg, Reference(text, len(segments), tuple(words))


def read_truth(data_dir: str | Path) -> tuple[dict[str, Segmentation], list[Reference]]:
    """(caption -> true Segmentation, one Reference per distinct caption) from the dataset's annotations."""
    path = Path(data_dir) / ANNOTATIONS
    if not path.is_file():
        raise TruthError(f"{path}: no such file (ground truth exists only for the synthetic corpus)")
    truth: dict[str, Segmentation] = {}
    refs: list[Reference] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                clip = json.loads(line)
                for cap in clip.get("captions", ()):
                    if cap["text"] in truth:
                        continue
                    seg, ref = _caption_truth(cap, where)
                    truth[seg.caption] = seg
                    refs.append(ref)
            except (KeyError, TypeError, ValueError, IndexError) as exc:
                if isinstance(exc, TruthError):
                    raise
                raise TruthError(f"{where}: not a clip annotation ({type(exc).__name__}: {exc})") from None
    return truth, refs


def has_truth(data_dir: str | Path) -> bool:
    return (Path(data_dir) / ANNOTATIONS).is_file()


class GroundTruthSegmenter(Segmenter):
    """The annotated sub-texts; `model` names the annotation file's content so caches of two corpora never mix."""

    backend = "truth"
    version = "truth-1"

    def __init__(self, data_dir: str | Path):
        self.data_dir = Path(data_dir)
        self.truth, self.references = read_truth(self.data_dir)
        self.model = "annotations-" + file_sha256(self.data_dir / ANNOTATIONS)[:12]
        self._rules = RuleSegmenter()

    def segment_iter(self, captions: list[str]) -> Iterator[tuple[int, Segmentation]]:
        for i, caption in enumerate(captions):
            seg = self.truth.get(caption)
            if seg is None:
                seg = self._rules.one(caption, backend=self.backend, fallback="no_truth",
                                      detail="caption not in annotations.jsonl")
            yield i, seg
