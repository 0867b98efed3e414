"""Sub-texts, segmentations, the `Segmenter` interface, and the checks every backend's answer must pass.

A caption is split into N ordered sub-texts, one sub-action each, in TEMPORAL order ("A before B" and "B after A"
both give [A, B]). Every sub-text is a span of the caption (or a span with connectives stripped at its edges) and
carries its character offsets, so a word occurrence of the caption can be mapped to the sub-text that holds it even
when the order differs from the caption's reading order.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field


class SegmentError(RuntimeError):
    """A failure that stops a whole segmentation run (not one caption): a refused key, an unknown model."""


@dataclass(frozen=True)
class SubText:
    text: str  # caption[start:end]
    start: int  # character offsets into the caption
    end: int

    def to_json(self) -> list:
        return [self.text, self.start, self.end]

    @classmethod
    def from_json(cls, obj: Sequence) -> "SubText":
        text, start, end = obj
        return cls(str(text), int(start), int(end))


# Why a caption fell back to the rule segmenter. Transient reasons are retried by a later run (never cached);
# the others are answers the model would give again at temperature 0 (cached with the fallback).
TRANSIENT = frozenset({"timeout", "rate_limit", "server_error", "connection"})


@dataclass(frozen=True)
class Segmentation:
    caption: str
    subtexts: tuple[SubText, ...]  # temporal order
    backend: str  # the backend that was asked ("openai", "rules", "truth")
    fallback: str | None = None  # None, or why the rule segmenter answered instead (a short code, see TRANSIENT)
    detail: str = ""  # a human-readable explanation of the fallback (never holds a secret)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.subtexts]

    @property
    def fell_back(self) -> bool:
        return self.fallback is not None

    @property
    def transient(self) -> bool:
        return self.fallback in TRANSIENT

    def index_at(self, offset: int) -> int | None:
        """Index (temporal) of the sub-text whose span holds the caption character `offset`, None if none does."""
        for i, s in enumerate(self.subtexts):
            if s.start <= offset < s.end:
                return i
        return None

    def to_json(self) -> dict:
        out = {"caption": self.caption, "subtexts": [s.to_json() for s in self.subtexts], "backend": self.backend}
        if self.fallback is not None:
            out["fallback"] = self.fallback
            out["detail"] = self.detail
        return out

    @classmethod
    def from_json(cls, obj: dict) -> "Segmentation":
        return cls(obj["caption"], tuple(SubText.from_json(s) for s in obj["subtexts"]), obj["backend"],
                   obj.get("fallback"), obj.get("detail", ""))


class Segmenter(ABC):
    """Splits captions into temporally ordered sub-texts.

    `backend`, `model` and `version` identify what produced an answer; with the caption they key the cache, so
    anything that changes the answers (a new prompt, new rules) must change `version`.
    """

    backend: str = ""
    model: str = ""
    version: str = ""

    def segment(self, captions: list[str]) -> list[Segmentation]:
        """One Segmentation per caption, in the order given."""
        out: list[Segmentation | None] = [None] * len(captions)
        for i, seg in self.segment_iter(captions):
            out[i] = seg
        return out  # type: ignore[return-value]

    @abstractmethod
    def segment_iter(self, captions: list[str]) -> Iterator[tuple[int, Segmentation]]:
        """(index, Segmentation) pairs as they are ready, in any order (the cache flushes as they come)."""


# ---------------------------------------------------------------------------------------------------------------
# Words and validation
# ---------------------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z0-9]+")

# Words that carry no motion meaning of their own: determiners, pronouns, auxiliaries, connectives, the subject
# nouns of HumanML3D captions, and light prepositions. Everything else ("up", "down", "left", "clockwise", verbs,
# body parts) is a content word that some sub-text must keep.
FUNCTION_WORDS = frozenset("""
a an the this that these those his her their its my your our one some any each both
he she they it him them i we you someone somebody something anything nothing everything himself herself themselves
itself
person man woman human guy lady boy girl figure individual people character subject
is are was were be been being am has have had do does did will would can could should
and or but nor so yet then than also too
while whilst as when once before after afterwards afterward finally first firstly next later eventually
subsequently meanwhile simultaneously same time followed by that which who whom whose where
to of with in on at from into onto for by about
s
""".split())


def words(text: str) -> list[tuple[str, int, int]]:
    """(lowercased word, start, end) for every alphanumeric run (hyphens and apostrophes split words)."""
    return [(m.group(0).lower(), m.start(), m.end()) for m in _WORD.finditer(text)]


def content_words(text: str) -> list[tuple[str, int, int]]:
    return [w for w in words(text) if w[0] not in FUNCTION_WORDS]


# Connectives dropped at a sub-text's edges (a near-span).
EDGE_CONNECTIVES = frozenset("""
and then after that afterwards afterward finally first firstly next before once later eventually subsequently
followed by also lastly so but this which
""".split())


# At a sub-text's end only conjunctions are dropped ("jumps forward once" keeps its adverb).
TRAILING_CONNECTIVES = frozenset({"and", "then", "but", "so", "or"})


def trim_span(caption: str, start: int, end: int) -> tuple[int, int]:
    """Shrink [start, end) past punctuation, connectives at its start and conjunctions at its end (never to
    nothing)."""
    toks = [w for w in words(caption) if w[1] >= start and w[2] <= end]
    lo, hi = 0, len(toks)
    while lo < hi and toks[lo][0] in EDGE_CONNECTIVES:
        lo += 1
    while hi > lo and toks[hi - 1][0] in TRAILING_CONNECTIVES:
        hi -= 1
    if lo == hi:  # nothing but connectives: keep the words as they are
        lo, hi = 0, len(toks)
    if not toks:
        return start, start
    return toks[lo][1], toks[hi - 1][2]


def make_subtext(caption: str, start: int, end: int) -> SubText:
    s, e = trim_span(caption, start, end)
    return SubText(caption[s:e], s, e)


@dataclass
class Invalid(Exception):
    """An answer that fails validation; `reason` is a short code, `detail` says what was wrong."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason


def _match(cap: list[tuple[str, int, int]], sub: list[str], used: set[int]) -> list[tuple[int, int]]:
    """Every place `sub`'s words occur in `cap` as consecutive words that no earlier sub-text used, as (first index,
    last index) pairs. Connectives a sub-text leaves out at its edges simply stay outside its span; a sub-text that
    drops words inside ("walks forward turns" for "walks forward, then turns") is not a span."""
    n, m = len(cap), len(sub)
    return [(i, i + m - 1) for i in range(n - m + 1)
            if all(cap[i + k][0] == sub[k] for k in range(m)) and not any(x in used for x in range(i, i + m))]


def align(caption: str, texts: Sequence[str]) -> list[SubText]:
    """Locate each answered sub-text in the caption (case, punctuation and whitespace ignored) and check the answer.

    Raises Invalid when a sub-text is empty, holds a word the caption lacks (`invented`), is not a span of the
    caption (`not_span`), two sub-texts claim the same words (`overlap`), or the sub-texts leave out one of the
    caption's content words (`missing`). Repeated phrases ("walks forward then walks forward") are matched to
    distinct occurrences, earliest unused first, in caption order of the answer's spans.
    """
    if not texts:
        raise Invalid("empty", "no sub-texts")
    cap = words(caption)
    vocab = {w for w, _, _ in cap}
    subs = [[w for w, _, _ in words(t)] for t in texts]
    for t, sw in zip(texts, subs):
        if not sw:
            raise Invalid("empty", f"sub-text {t!r} has no words")
        extra = [w for w in sw if w not in vocab]
        if extra:
            raise Invalid("invented", "words not in the caption: " + ", ".join(sorted(set(extra))))
    used: set[int] = set()
    spans: list[tuple[int, int] | None] = [None] * len(subs)
    # Longest sub-texts first: a short one ("walks") must not steal the occurrence a longer one needs.
    for idx in sorted(range(len(subs)), key=lambda i: -len(subs[i])):
        options = _match(cap, subs[idx], used)
        if not options:
            if _match(cap, subs[idx], set()):
                raise Invalid("overlap", f"sub-text {texts[idx]!r} repeats words of another sub-text")
            raise Invalid("not_span", f"sub-text {texts[idx]!r} is not a span of the caption")
        a, b = options[0]
        spans[idx] = (a, b)
        used.update(range(a, b + 1))
    missing = [w for i, (w, _, _) in enumerate(cap) if i not in used and w not in FUNCTION_WORDS]
    if missing:
        raise Invalid("missing", "caption words in no sub-text: " + ", ".join(missing))
    out = []
    for a, b in spans:  # type: ignore[misc]
        s, e = cap[a][1], cap[b][2]
        out.append(SubText(caption[s:e], s, e))
    return out


def _first_content(cap: list[tuple[str, int, int]], lo: int, hi: int, step: int) -> int | None:
    i = lo
    while 0 <= i < len(cap) and (i < hi if step > 0 else i > hi):
        if cap[i][0] not in FUNCTION_WORDS:
            return i
        i += step
    return None


# "after a while", "after a few seconds": a time phrase, read like "after that".
TIME_WORDS = frozenset("while moment moments second seconds pause bit time beat delay minute".split())


def order_constraints(caption: str) -> list[tuple[int, int]]:
    """Pairs (earlier, later) of character offsets of content words that "before"/"after" put in time order.

    "X before Y" / "before Y, X": X's word nearest the connective precedes Y's first content word; "X after Y" /
    "after Y, X": the other way round. "after that/this/which" and "after a while" mean "then" (X, then Y);
    "before that" puts Y first. Only the words nearest the connective are used, so a sub-text boundary elsewhere
    never creates a false constraint.
    """
    cap = words(caption)
    out = []
    for i, (w, _, _) in enumerate(cap):
        if w not in ("before", "after"):
            continue
        right = _first_content(cap, i + 1, len(cap), 1)
        left = _first_content(cap, i - 1, -1, -1)
        if right is None:
            continue
        nxt = [t[0] for t in cap[i + 1:i + 4]]
        refers_back = bool(nxt) and (nxt[0] in ("that", "this", "which") or (
            w == "after" and any(t in TIME_WORDS for t in nxt[:3])))
        if refers_back:  # "X, after that Y" = X then Y; "X, before that Y" = Y then X
            if left is None:
                continue
            pair = (left, right) if w == "after" else (right, left)
        elif left is not None:  # mid-sentence: "X before Y" / "X after Y"
            pair = (left, right) if w == "before" else (right, left)
        else:  # sentence-initial: "before/after Y, X", X starting after the first comma
            comma = caption.find(",", cap[i][2])
            k = next((j for j, t in enumerate(cap) if t[1] > comma), None) if comma >= 0 else None
            x = _first_content(cap, k, len(cap), 1) if k is not None else None
            if x is None:
                continue
            pair = (x, right) if w == "before" else (right, x)
        out.append((cap[pair[0]][1], cap[pair[1]][1]))
    return out


def check_order(caption: str, subtexts: Sequence[SubText]) -> None:
    """Raise Invalid("order") when the sub-texts contradict a before/after in the caption."""
    seg = Segmentation(caption, tuple(subtexts), "check")
    for early, late in order_constraints(caption):
        a, b = seg.index_at(early), seg.index_at(late)
        if a is not None and b is not None and a > b:
            raise Invalid("order", f"{subtexts[a].text!r} must come before {subtexts[b].text!r} (before/after)")


def validate(caption: str, texts: Sequence[str]) -> list[SubText]:
    """The sub-texts of an answer located in the caption, or Invalid naming what is wrong (see `align`)."""
    subs = align(caption, texts)
    check_order(caption, subs)
    return subs


@dataclass
class Tally:
    """What a run did: captions answered by each route and the fallback reasons."""

    captions: int = 0
    cached: int = 0
    computed: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)

    def add(self, seg: Segmentation) -> None:
        if seg.fallback is not None:
            self.fallbacks[seg.fallback] = self.fallbacks.get(seg.fallback, 0) + 1

    @property
    def num_fallbacks(self) -> int:
        return sum(self.fallbacks.values())


def unique(captions: Iterable[str]) -> list[str]:
    """Distinct captions in first-seen order (datasets repeat captions; each is segmented once)."""
    return list(dict.fromkeys(captions))
