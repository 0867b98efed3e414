"""MATE's training items: word OCCURRENCES with the motion segment of their sub-text (docs/method.md §5).

A training sample is (caption t, motion m, a word w of t). Here it is one occurrence of a word in a caption, with
the sub-text that holds it and that sub-text's row span from the localization (`mate.align.localize`): "walks
forward then walks backward" gives two `walks`, each with its own segment. `analyse_caption` reads a caption into
its words (`WordOccurrence`); `build_items` keeps the eligible ones of a split's (clip, caption) pairs (exactly
`MotionDataset`'s: the T2M length filter, timed captions as their own sub-clip) as compact numpy arrays (`Items`),
so 30k clips x 3 captions x ~5 words costs a few tens of MB.

Lemma and POS come from the caption's own `word/POS` token field where it aligns, else from `mate.align.words`'
rules (counted); sub-token positions index `encoder.tokenize([caption])` (`TextEncoder.words`': special tokens
excluded, [CLS] counted); a word no sub-text holds (e.g. a connective under `all`) gets sub-text -1 and the caption's
whole row range (counted). `align.word_sampling` picks the eligible words (`all`, `content`, `motion`;
`mate.align.words`); a caption with no eligible word contributes none (counted), a split with none is an error.

Also here: the prototype vocabulary (`prototype_vocab`: the N most frequent eligible lemmas of TRAIN), the
false-negative masks (`same_word`, `same_caption`, `meaning_absent`, judged on lemma classes with the synonym map, or
on surface strings for comparison; in `masks`) and `false_negative_rate` against the synthetic annotations. Batches
of items: `mate.align.batches`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mate.data.layout import HUMANML3D
from mate.errors import UserError
from mate.text.encoder import WORD_RE, Word

from . import words
from .masks import false_negative_counts, false_negative_rate, meaning_absent, same_caption, same_word

__all__ = ["Items", "PrototypeVocab", "WordOccurrence", "analyse_caption", "build_items", "caption_words",
           "false_negative_counts", "false_negative_rate", "meaning_absent", "prototype_vocab", "same_caption",
           "same_word"]


@dataclass
class Items:
    """Word occurrences of one split (M of them) over C distinct captions; see the module docstring."""

    split: str
    sampling: str
    encoder_name: str
    ids: list[str]  # the pack's clip ids (clip index -> id)
    # per occurrence (M)
    clip: np.ndarray  # int32 clip index in the pack
    caption: np.ndarray  # int64 global caption index in the pack
    slot: np.ndarray  # int32 index into `texts` / `captions`
    word: np.ndarray  # int16 index of the word among the caption's words
    char: np.ndarray  # int32 (M, 2) character span [start, end) in the caption
    tok_ptr: np.ndarray  # int64 (M + 1): occurrence m's sub-token positions are tok_pos[tok_ptr[m]:tok_ptr[m+1]]
    tok_pos: np.ndarray  # int32
    subtext: np.ndarray  # int16 temporal sub-text index, -1 when no sub-text holds the word
    num_subtexts: np.ndarray  # int16
    span: np.ndarray  # int32 (M, 2) the sub-text's rows [s, e) in the clip
    rows: np.ndarray  # int32 (M, 2) the caption's rows [a, b) in the clip (the item's motion)
    surface_id: np.ndarray  # int32 into `surfaces` (lowercased)
    lemma_id: np.ndarray  # int32 into `lemmas`
    pos_id: np.ndarray  # int8 into `pos_tags`
    canon_id: np.ndarray  # int32 into `classes`: the lemma's synonym class (same_word)
    cls_ptr: np.ndarray  # int64 (M + 1): the occurrence's meaning classes (with multi-word forms' classes)
    cls_ids: np.ndarray  # int32 into `classes`
    # per caption slot (C)
    captions: np.ndarray  # int64 global caption index
    texts: list[str]
    cap_cls_ptr: np.ndarray  # int64 (C + 1): every meaning class of the caption's words
    cap_cls_ids: np.ndarray  # int32
    cap_surf_ptr: np.ndarray  # int64 (C + 1): every lowercased surface of the caption's words
    cap_surf_ids: np.ndarray  # int32
    # vocabularies
    surfaces: list[str]
    lemmas: list[str]
    pos_tags: list[str]
    classes: list[str]
    stats: dict = field(default_factory=dict)
    # how `collate` crops (the dataset family's values, or `data.max_len` / `data.unit_len` when set)
    max_len: int = HUMANML3D.max_motion_len  # longest crop, in rows
    unit: int = HUMANML3D.unit_len  # crops are a multiple of this many rows

    def __len__(self) -> int:
        return len(self.clip)

    def positions(self, m: int) -> list[int]:
        return self.tok_pos[self.tok_ptr[m]:self.tok_ptr[m + 1]].tolist()

    def lemma(self, m: int) -> str:
        return self.lemmas[self.lemma_id[m]]

    def surface(self, m: int) -> str:
        return self.surfaces[self.surface_id[m]]

    def pos(self, m: int) -> str:
        return self.pos_tags[self.pos_id[m]]

    def text(self, m: int) -> str:
        return self.texts[self.slot[m]]

    def occurrence(self, m: int) -> dict[str, Any]:
        """One occurrence as a dict (for inspection and tests)."""
        return {"clip": self.ids[self.clip[m]], "caption": int(self.caption[m]), "text": self.text(m),
                "word": self.surface(m), "lemma": self.lemma(m), "pos": self.pos(m),
                "char": tuple(int(v) for v in self.char[m]), "tokens": self.positions(m),
                "subtext": int(self.subtext[m]), "num_subtexts": int(self.num_subtexts[m]),
                "span": tuple(int(v) for v in self.span[m]), "rows": tuple(int(v) for v in self.rows[m]),
                "classes": sorted(self.classes[c] for c in self.cls_ids[self.cls_ptr[m]:self.cls_ptr[m + 1]])}

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in vars(self).values() if isinstance(v, np.ndarray))


# --------------------------------------------------------------------------------------------------- words


def caption_words(encoder, texts: Sequence[str], batch: int = 512) -> list[list[Word]]:
    """`encoder.words(text)` for many captions with one tokenizer call per `batch` (same positions: the tokenizer's
    own sequence with special tokens, truncated to `encoder.max_length`)."""
    out: list[list[Word]] = []
    texts = list(texts)
    for at in range(0, len(texts), batch):
        chunk = texts[at:at + batch]
        enc = encoder.tokenizer(chunk, truncation=True, max_length=encoder.max_length, return_offsets_mapping=True,
                                return_special_tokens_mask=True)
        for text, offsets, special in zip(chunk, enc["offset_mapping"], enc["special_tokens_mask"]):
            toks = [(i, a, b) for i, ((a, b), s) in enumerate(zip(offsets, special)) if not s and b > a]
            found, p = [], 0
            for m in WORD_RE.finditer(text):
                while p < len(toks) and toks[p][2] <= m.start():
                    p += 1
                got, q = [], p
                while q < len(toks) and toks[q][1] < m.end():
                    if toks[q][2] > m.start():
                        got.append(toks[q][0])
                    q += 1
                if got:
                    found.append(Word(m.group(0), m.start(), m.end(), tuple(got)))
            out.append(found)
    return out


@dataclass(frozen=True, slots=True)
class WordOccurrence:
    """One word of one caption as a training item sees it (`analyse_caption`; one row of `Items` when eligible)."""

    index: int  # among the caption's words
    surface: str  # lowercased
    lemma: str
    pos: str  # universal POS tag
    pos_guessed: bool  # the token field does not cover the word: rule lemma and guessed POS
    classes: set[str]  # meaning classes (`words.meaning_classes`)
    chars: tuple[int, int]  # [start, end) in the caption
    tokens: tuple[int, ...]  # sub-token positions in the tokenized caption
    subtext: int  # temporal sub-text index, -1 when no sub-text holds the word
    span: tuple[int, int]  # the sub-text's rows [s, e) in the clip; the caption's rows when subtext is -1


def analyse_caption(caption, found: Sequence[Word], subtexts, rows: tuple[int, int],
                    memo: dict | None = None) -> list[WordOccurrence]:
    """Every word of `caption` (`found`: its `caption_words`) with the sub-text that holds it (`subtexts`: the
    caption's localization entries, `rows`: its rows in the clip). Lemma and POS come from the caption's token field
    where it aligns; `memo` keeps that reading per (text, token field), as corpora repeat captions."""
    memo = {} if memo is None else memo
    key = (caption.text, tuple(caption.tokens))
    if key not in memo:
        match = words.align_tokens([w.text for w in found], caption.tokens)
        fields = [("", words.guess_pos(w.text)) if t is None else caption.tokens[t] for w, t in zip(found, match)]
        lemmas = [words.normalize_word(f[0]) or words.rule_lemma(w.text) for w, f in zip(found, fields)]
        tags = [f[1].upper() for f in fields]
        memo[key] = (lemmas, tags, [t is None for t in match], words.meaning_classes(lemmas))
    lemmas, tags, guessed, classes = memo[key]
    out = []
    for i, w in enumerate(found):
        sub = next((n for n, e in enumerate(subtexts) if e[1] <= w.start < e[2]), -1)
        span = rows if sub < 0 else (subtexts[sub][3], subtexts[sub][4])
        out.append(WordOccurrence(index=i, surface=w.text.lower(), lemma=lemmas[i], pos=tags[i], pos_guessed=guessed[i],
                                  classes=classes[i], chars=(w.start, w.end), tokens=w.tokens, subtext=sub, span=span))
    return out


def _intern(table: dict[str, int], s: str) -> int:
    """`s`'s id in `table` (ids in first-seen order: `list(table)` is the vocabulary)."""
    return table.setdefault(s, len(table))


def _ragged(rows: list, dtype) -> tuple[np.ndarray, np.ndarray]:
    """Sequences as (offsets (n + 1,) int64, concatenated values)."""
    ptr = np.zeros(len(rows) + 1, np.int64)
    ptr[1:] = np.cumsum([len(r) for r in rows])
    return ptr, np.array([v for r in rows for v in r], dtype)


# `Items`' per-occurrence arrays and their dtypes (char, span and rows are (M, 2))
_COLUMNS = {"clip": np.int32, "caption": np.int64, "slot": np.int32, "word": np.int16, "char": np.int32,
            "subtext": np.int16, "num_subtexts": np.int16, "span": np.int32, "rows": np.int32, "surface_id": np.int32,
            "lemma_id": np.int32, "pos_id": np.int8, "canon_id": np.int32}


class _ItemsBuilder:
    """Packs a split's occurrences into `Items`' arrays. Strings get ids in first-seen order (a caption's words before
    its occurrences), so ids belong to one build; the content POS tags come first in every build."""

    def __init__(self, sampling: str) -> None:
        self.sampling = sampling
        self.surfaces: dict[str, int] = {}
        self.lemmas: dict[str, int] = {}
        self.pos_tags = {tag: i for i, tag in enumerate(sorted(words.CONTENT_POS))}
        self.classes: dict[str, int] = {}
        self.stats: Counter = Counter()
        self.columns: dict[str, list] = {name: [] for name in (*_COLUMNS, "tokens", "class_ids")}  # per occurrence
        self.slot_of: dict[int, int] = {}  # per caption: global caption index -> slot
        self.texts: list[str] = []
        self.caption_classes: list[list[int]] = []
        self.caption_surfaces: list[list[int]] = []

    def add(self, clip: int, caption: int, text: str, rows: tuple[int, int], num_subtexts: int,
            found: list[WordOccurrence]) -> None:
        """One (clip, caption) pair: `found` holds every word of the caption; its eligible ones become occurrences."""
        self.stats.update({"captions": 1, "words": len(found), "pos_guessed": sum(o.pos_guessed for o in found),
                           "words_truncated": sum(1 for _ in WORD_RE.finditer(text)) - len(found)})
        if caption not in self.slot_of:
            self.slot_of[caption] = len(self.texts)
            self.texts.append(text)
            self.caption_classes.append(sorted({_intern(self.classes, c) for o in found for c in o.classes}))
            self.caption_surfaces.append(sorted({_intern(self.surfaces, o.surface) for o in found}))
        kept = [o for o in found if words.eligible(o.lemma, o.surface, o.pos, self.sampling)]
        for o in kept:
            if o.subtext < 0:
                self.stats["outside_subtext"] += 1
            row = {"clip": clip, "caption": caption, "slot": self.slot_of[caption], "word": o.index, "char": o.chars,
                   "subtext": o.subtext, "num_subtexts": num_subtexts, "span": o.span, "rows": rows,
                   "surface_id": _intern(self.surfaces, o.surface), "lemma_id": _intern(self.lemmas, o.lemma),
                   "pos_id": _intern(self.pos_tags, o.pos), "canon_id": _intern(self.classes, words.canonical(o.lemma)),
                   "tokens": o.tokens, "class_ids": sorted({_intern(self.classes, c) for c in o.classes})}
            for name, value in row.items():
                self.columns[name].append(value)
        if not kept:
            self.stats["captions_without_words"] += 1

    def build(self, split: str, encoder_name: str, ids: list[str], max_len: int, unit: int) -> Items:
        if not self.columns["clip"]:
            raise UserError(f"split {split!r} has no eligible word occurrence under align.word_sampling={self.sampling}"
                            f" ({self.stats['captions']} captions)")
        self.stats["occurrences"] = len(self.columns["clip"])
        arrays = {name: np.array(self.columns[name], dtype) for name, dtype in _COLUMNS.items()}
        for name in ("char", "span", "rows"):
            arrays[name] = arrays[name].reshape(-1, 2)
        arrays["tok_ptr"], arrays["tok_pos"] = _ragged(self.columns["tokens"], np.int32)
        arrays["cls_ptr"], arrays["cls_ids"] = _ragged(self.columns["class_ids"], np.int32)
        arrays["cap_cls_ptr"], arrays["cap_cls_ids"] = _ragged(self.caption_classes, np.int32)
        arrays["cap_surf_ptr"], arrays["cap_surf_ids"] = _ragged(self.caption_surfaces, np.int32)
        return Items(split=split, sampling=self.sampling, encoder_name=encoder_name, ids=ids, **arrays,
                     captions=np.array(list(self.slot_of), np.int64), texts=self.texts, surfaces=list(self.surfaces),
                     lemmas=list(self.lemmas), pos_tags=list(self.pos_tags), classes=list(self.classes),
                     stats=dict(self.stats), max_len=max_len, unit=unit)


def build_items(pack, encoder, localization, cfg, split: str, *, word_sampling: str | None = None) -> Items:
    """The word occurrences of `split` (see the module docstring). `localization` maps (clip id, caption index
    within the clip) to [(sub-text, char start, char end, row start, row end), ...] (`localize`'s result);
    `word_sampling` overrides `align.word_sampling`."""
    from mate.data.dataset import MotionDataset

    configured = (cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg or {})).get("align.word_sampling")
    sampling = word_sampling or ("motion" if configured is None else configured)
    if sampling not in words.SAMPLINGS:
        raise UserError(f"align.word_sampling must be one of {', '.join(words.SAMPLINGS)}; got {sampling!r}")
    ds = MotionDataset.from_config(pack, split, {} if cfg is None else cfg, random_crop=False)
    captions = {int(k): pack.caption(int(k)) for k in np.unique(ds.cap)}
    texts = list(dict.fromkeys(c.text for c in captions.values()))
    words_of = dict(zip(texts, caption_words(encoder, texts)))
    builder, memo = _ItemsBuilder(sampling), {}
    for clip, k, (a, b) in zip(ds.clip.tolist(), ds.cap.tolist(), ds.rows.tolist()):
        cid, j = pack.ids[clip], k - int(pack.cap_ptr[clip])
        subtexts = localization.get((cid, j))
        if subtexts is None:
            raise UserError(f"the localization has no entry for clip {cid} caption {j} ({split}); localize the "
                            f"split first")
        caption = captions[k]
        found = analyse_caption(caption, words_of[caption.text], subtexts, (a, b), memo)
        builder.add(clip, k, caption.text, (a, b), len(subtexts), found)
    return builder.build(split, encoder.name, pack.ids, int(ds.max_motion_len), int(ds.unit_len))


# --------------------------------------------------------------------------------------------- prototypes


@dataclass
class PrototypeVocab:
    """The words that get prototypes (lemmas, most frequent first; ties alphabetical) with their TRAIN counts and
    synonym classes (`classes[i]`: a loss may mask a synonym's prototype as a non-negative)."""

    words: list[str]
    counts: np.ndarray
    classes: list[str]

    def __post_init__(self) -> None:
        self._index = {w: i for i, w in enumerate(self.words)}

    def __len__(self) -> int:
        return len(self.words)

    def index(self, lemma: str) -> int:
        return self._index.get(lemma, -1)

    def indices(self, items: Items, index: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """The prototype index (int64) of every occurrence (or of `index`'s), -1 outside the vocabulary."""
        lookup = np.array([self._index.get(lemma, -1) for lemma in items.lemmas], np.int64)
        ids = items.lemma_id if index is None else items.lemma_id[np.asarray(index, np.int64)]
        return lookup[ids] if len(lookup) else np.full(len(ids), -1, np.int64)


def prototype_vocab(items: Items, size: int | str) -> PrototypeVocab:
    """The `size` most frequent eligible lemmas of the TRAIN items (`"all"`: every one; `align.prototype_vocab`)."""
    if items.split != "train":
        raise ValueError(f"the prototype vocabulary comes from the train split's items, not {items.split!r}")
    if isinstance(size, str):
        if size.strip().lower() == "all":
            size = None  # type: ignore[assignment]
        elif size.strip().isdigit():
            size = int(size)
        else:
            raise UserError(f"align.prototype_vocab must be 'all' or a number of words, got {size!r}")
    if size is not None and int(size) < 1:
        raise UserError(f"align.prototype_vocab must be >= 1 (or 'all'), got {size}")
    counts = np.bincount(items.lemma_id, minlength=len(items.lemmas))
    order = sorted((i for i in range(len(items.lemmas)) if counts[i] > 0), key=lambda i: (-counts[i], items.lemmas[i]))
    if size is not None:
        order = order[: int(size)]
    lemmas = [items.lemmas[i] for i in order]
    return PrototypeVocab(lemmas, counts[order].astype(np.int64), [words.canonical(w) for w in lemmas])
