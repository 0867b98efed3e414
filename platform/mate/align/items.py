"""MATE's training items: word OCCURRENCES with the motion segment of their sub-text (docs/method.md §5).

A training sample is (caption t, motion m, a word w of t). Here it is one occurrence of a word in a caption, with
the sub-text that holds it and that sub-text's row span from the localization (`mate.align.localize`): "walks
forward then walks backward" gives two `walks`, each with its own segment. `build_items` turns one split's
(clip, caption) pairs (exactly `MotionDataset`'s: the T2M length filter, timed captions as their own sub-clip) into
compact numpy arrays, so 30k clips x 3 captions x ~5 words costs a few tens of MB.

Per occurrence: clip and caption index, the word (surface, lowercased), its lemma and POS (from the caption's own
`word/POS` token field when it aligns, else `mate.align.words.rule_lemma` / `guess_pos`, counted), its character
span, its sub-token positions in `encoder.tokenize([caption])` (`TextEncoder.words`' positions, special tokens
excluded, [CLS] counted), its sub-text index (temporal; -1 for a word no sub-text holds, e.g. a connective under
`all`, whose span is then the caption's whole row range, counted) and the sub-text's row span [s, e) in the clip.
`align.word_sampling` picks the eligible words (`all`, `content`, `motion`; `mate.align.words`); a caption with no
eligible word contributes none (counted in `stats["captions_without_words"]`), a split with none at all is an error.

Also here: the prototype vocabulary (`prototype_vocab`: the N most frequent eligible lemmas of TRAIN), the
false-negative masks (`same_word`, `same_caption`, `meaning_absent`, judged on lemma classes with the synonym map, or
on surface strings for comparison), `false_negative_rate` against the synthetic annotations, and batching
(`sample_batch`: uniform over occurrences; `collate`: crops, spans on the crop, sub-token positions, masks).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from mate.data.layout import HUMANML3D
from mate.errors import UserError
from mate.text.encoder import WORD_RE, Word

from . import words as W
from .masks import false_negative_counts, false_negative_rate, meaning_absent, same_caption, same_word

__all__ = ["Items", "PrototypeVocab", "build_items", "caption_words", "collate", "crop_window", "false_negative_rate",
           "false_negative_counts", "meaning_absent", "prototype_vocab", "same_caption", "same_word", "sample_batch"]


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
            words, p = [], 0
            for m in WORD_RE.finditer(text):
                while p < len(toks) and toks[p][2] <= m.start():
                    p += 1
                got, q = [], p
                while q < len(toks) and toks[q][1] < m.end():
                    if toks[q][2] > m.start():
                        got.append(toks[q][0])
                    q += 1
                if got:
                    words.append(Word(m.group(0), m.start(), m.end(), tuple(got)))
            out.append(words)
    return out


class _Interner:
    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def __call__(self, s: str) -> int:
        i = self.index.get(s)
        if i is None:
            i = self.index[s] = len(self.items)
            self.items.append(s)
        return i


def _opt(cfg, key: str, default):
    if cfg is None:
        return default
    values = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    v = values.get(key)
    return default if v is None else v


def build_items(pack, encoder, localization, cfg, split: str, *, word_sampling: str | None = None) -> Items:
    """The word occurrences of `split` (see the module docstring). `localization` maps (clip id, caption index
    within the clip) to [(sub-text, char start, char end, row start, row end), ...] (`localize`'s result);
    `word_sampling` overrides `align.word_sampling`."""
    from mate.data.dataset import MotionDataset

    sampling = word_sampling or _opt(cfg, "align.word_sampling", "motion")
    if sampling not in W.SAMPLINGS:
        raise UserError(f"align.word_sampling must be one of {', '.join(W.SAMPLINGS)}; got {sampling!r}")
    ds = MotionDataset.from_config(pack, split, {} if cfg is None else cfg, random_crop=False)
    pairs_clip, pairs_cap, pairs_rows = ds.clip.astype(np.int64), ds.cap.astype(np.int64), ds.rows.astype(np.int64)
    captions = {int(k): pack.caption(int(k)) for k in np.unique(pairs_cap)}
    texts_u = list(dict.fromkeys(c.text for c in captions.values()))
    words_of = dict(zip(texts_u, caption_words(encoder, texts_u)))

    surf, lem, posi, cls = _Interner(), _Interner(), _Interner(), _Interner()
    for tag in sorted(W.CONTENT_POS):
        posi(tag)
    stats: Counter = Counter()
    occ: dict[str, list] = {k: [] for k in ("clip", "caption", "slot", "word", "char", "subtext", "num_subtexts",
                                            "span", "rows", "surface", "lemma", "pos", "canon", "ncls", "ntok")}
    tok_flat: list[int] = []
    cls_flat: list[int] = []
    slot_of: dict[int, int] = {}
    slot_caps: list[int] = []
    slot_texts: list[str] = []
    cap_cls: list[list[int]] = []
    cap_surf: list[list[int]] = []
    analysed: dict[tuple, tuple] = {}

    for ci, k, (a, b) in zip(pairs_clip.tolist(), pairs_cap.tolist(), pairs_rows.tolist()):
        cap = captions[k]
        cid = pack.ids[ci]
        j = k - int(pack.cap_ptr[ci])
        entries = localization.get((cid, j))
        if entries is None:
            raise UserError(f"the localization has no entry for clip {cid} caption {j} ({split}); localize the "
                            f"split first")
        ws = words_of[cap.text]
        akey = (cap.text, tuple(cap.tokens))
        if akey not in analysed:
            match = W.align_tokens([w.text for w in ws], cap.tokens)
            lemmas, tags, guessed = [], [], 0
            for w, t in zip(ws, match):
                if t is None:
                    lemmas.append(W.rule_lemma(w.text))
                    tags.append(W.guess_pos(w.text))
                    guessed += 1
                else:
                    lemmas.append(W.normalize_word(cap.tokens[t][0]) or W.rule_lemma(w.text))
                    tags.append(cap.tokens[t][1].upper())
            analysed[akey] = (lemmas, tags, W.meaning_classes(lemmas), guessed)
        lemmas, tags, classes, guessed = analysed[akey]
        stats["captions"] += 1
        stats["words"] += len(ws)
        stats["pos_guessed"] += guessed
        stats["words_truncated"] += sum(1 for _ in WORD_RE.finditer(cap.text)) - len(ws)
        if k not in slot_of:
            slot_of[k] = len(slot_caps)
            slot_caps.append(k)
            slot_texts.append(cap.text)
            cap_cls.append(sorted({cls(c) for cs in classes for c in cs}))
            cap_surf.append(sorted({surf(w.text.lower()) for w in ws}))
        slot = slot_of[k]
        got = 0
        for wi, (w, lemma, tag, cs) in enumerate(zip(ws, lemmas, tags, classes)):
            surface = w.text.lower()
            if not W.eligible(lemma, surface, tag, sampling):
                continue
            sub = next((n for n, e in enumerate(entries) if e[1] <= w.start < e[2]), -1)
            if sub < 0:
                stats["outside_subtext"] += 1
                span = (a, b)
            else:
                span = (entries[sub][3], entries[sub][4])
            got += 1
            occ["clip"].append(ci)
            occ["caption"].append(k)
            occ["slot"].append(slot)
            occ["word"].append(wi)
            occ["char"].append((w.start, w.end))
            occ["subtext"].append(sub)
            occ["num_subtexts"].append(len(entries))
            occ["span"].append(span)
            occ["rows"].append((a, b))
            occ["surface"].append(surf(surface))
            occ["lemma"].append(lem(lemma))
            occ["pos"].append(posi(tag))
            occ["canon"].append(cls(W.canonical(lemma)))
            ids = sorted({cls(c) for c in cs})
            occ["ncls"].append(len(ids))
            cls_flat.extend(ids)
            occ["ntok"].append(len(w.tokens))
            tok_flat.extend(w.tokens)
        if got == 0:
            stats["captions_without_words"] += 1
    if not occ["clip"]:
        raise UserError(f"split {split!r} has no eligible word occurrence under align.word_sampling={sampling} "
                        f"({stats['captions']} captions)")
    stats["occurrences"] = len(occ["clip"])

    def ptr(counts) -> np.ndarray:
        out = np.zeros(len(counts) + 1, np.int64)
        out[1:] = np.cumsum(counts)
        return out

    return Items(
        split=split, sampling=sampling, encoder_name=encoder.name, ids=pack.ids,
        clip=np.array(occ["clip"], np.int32), caption=np.array(occ["caption"], np.int64),
        slot=np.array(occ["slot"], np.int32), word=np.array(occ["word"], np.int16),
        char=np.array(occ["char"], np.int32).reshape(-1, 2), tok_ptr=ptr(occ["ntok"]),
        tok_pos=np.array(tok_flat, np.int32), subtext=np.array(occ["subtext"], np.int16),
        num_subtexts=np.array(occ["num_subtexts"], np.int16), span=np.array(occ["span"], np.int32).reshape(-1, 2),
        rows=np.array(occ["rows"], np.int32).reshape(-1, 2), surface_id=np.array(occ["surface"], np.int32),
        lemma_id=np.array(occ["lemma"], np.int32), pos_id=np.array(occ["pos"], np.int8),
        canon_id=np.array(occ["canon"], np.int32), cls_ptr=ptr(occ["ncls"]), cls_ids=np.array(cls_flat, np.int32),
        captions=np.array(slot_caps, np.int64), texts=slot_texts,
        cap_cls_ptr=ptr([len(c) for c in cap_cls]), cap_cls_ids=np.array([c for cs in cap_cls for c in cs], np.int32),
        cap_surf_ptr=ptr([len(c) for c in cap_surf]),
        cap_surf_ids=np.array([c for cs in cap_surf for c in cs], np.int32),
        surfaces=surf.items, lemmas=lem.items, pos_tags=posi.items, classes=cls.items, stats=dict(stats),
        max_len=int(ds.max_motion_len), unit=int(ds.unit_len),
    )


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
        lookup = np.array([self._index.get(l, -1) for l in items.lemmas], np.int64)
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
    words = [items.lemmas[i] for i in order]
    return PrototypeVocab(words, counts[order].astype(np.int64), [W.canonical(w) for w in words])


# ------------------------------------------------------------------------------------- false-negative masks


def sample_batch(items: Items, batch_size: int, rng: np.random.Generator) -> np.ndarray:
    """`batch_size` occurrence indices drawn uniformly over occurrences (without replacement when there are enough)."""
    if len(items) == 0:
        raise ValueError("no items to sample from")
    return rng.choice(len(items), size=batch_size, replace=batch_size > len(items)).astype(np.int64)


def crop_window(rows: tuple[int, int], span: tuple[int, int], max_len: int = HUMANML3D.max_motion_len,
                unit: int = HUMANML3D.unit_len, rng: np.random.Generator | None = None) -> tuple[int, int]:
    """The rows [o, o + n) an item shows: n = the caption's rows cut to a multiple of `unit`, at most `max_len`;
    the offset keeps the word's segment inside the crop when it fits (uniformly among such offsets with `rng`, else
    the one nearest the centred crop), and stays inside the segment when the segment is longer than the crop."""
    a, b = rows
    s, e = span
    n = min(max_len, ((b - a) // unit) * unit) or (b - a)
    lo, hi = max(a, e - n), min(s, b - n)  # offsets whose crop holds the whole segment
    if lo > hi:  # the segment is longer than the crop: crop inside it
        lo, hi = max(a, min(s, b - n)), max(a, min(e - n, b - n))
        lo, hi = min(lo, hi), max(lo, hi)
    if rng is not None:
        o = int(rng.integers(lo, hi + 1))
    else:
        o = min(max(a + (b - a - n) // 2, lo), hi)
    return o, o + n


def collate(pack, items: Items, index, *, encoder=None, prototypes: PrototypeVocab | np.ndarray | None = None,
            rng: np.random.Generator | None = None, max_len: int | None = None, unit: int | None = None,
            surface_absent: bool = False) -> dict[str, Any]:
    """A training batch for the occurrences `index`.

    motion (B, Lmax, D) float32 normalised rows of each item's crop (`crop_window`; max_len and unit default to the
    items' own, `data.max_len` and `data.unit_len` over the family's), lengths (B,), mask (B, Lmax);
    start (B,) the crop's first clip row; text (B captions); tokenized = encoder.tokenize(text) when `encoder` is
    given; positions (B, P) long sub-token positions of each word in its caption's tokenized sequence (padded with 0)
    and pos_mask (B, P); spans (B, 2) long, the word's segment in rows of the crop ([0, lengths]); proto (B,) long
    prototype index (-1 outside the vocabulary or without `prototypes`, which is a PrototypeVocab or an array of
    per-occurrence indices); lemma / word (B strings); subtext, num_subtexts, caption, index (B,) long; clip (B ids);
    same_word, same_caption, absent (B, B) bool masks (`same_word`, `same_caption`, `meaning_absent`)."""
    idx = np.asarray(index, np.int64)
    if encoder is not None and getattr(encoder, "name", None) != items.encoder_name:
        raise ValueError(f"items were tokenized by {items.encoder_name}, not {getattr(encoder, 'name', None)}")
    max_len = items.max_len if max_len is None else max_len
    unit = items.unit if unit is None else unit
    crops = [crop_window(tuple(items.rows[m]), tuple(items.span[m]), max_len, unit, rng) for m in idx]
    lengths = torch.tensor([e - o for o, e in crops], dtype=torch.long)
    lmax = int(lengths.max()) if len(idx) else 0
    motion = torch.zeros(len(idx), lmax, pack.dim, dtype=torch.float32)
    mean, std = pack.mean.astype(np.float32), pack.std.astype(np.float32)
    for r, (m, (o, e)) in enumerate(zip(idx, crops)):
        x = pack.motion(int(items.clip[m]), o, e)
        motion[r, : e - o] = torch.from_numpy((x - mean) / std)
    starts = np.array([o for o, _ in crops], np.int64)
    spans = np.clip(items.span[idx].astype(np.int64) - starts[:, None], 0, lengths.numpy()[:, None])
    pos = [items.positions(int(m)) for m in idx]
    width = max((len(p) for p in pos), default=0)
    positions = torch.zeros(len(idx), max(width, 1), dtype=torch.long)
    pos_mask = torch.zeros(len(idx), max(width, 1), dtype=torch.bool)
    for r, p in enumerate(pos):
        positions[r, : len(p)] = torch.tensor(p, dtype=torch.long)
        pos_mask[r, : len(p)] = True
    if prototypes is None:
        proto = np.full(len(idx), -1, np.int64)
    elif isinstance(prototypes, PrototypeVocab):
        proto = prototypes.indices(items, idx)
    else:
        proto = np.asarray(prototypes, np.int64)[idx]
    text = [items.texts[s] for s in items.slot[idx]]
    out: dict[str, Any] = {
        "index": torch.from_numpy(idx.copy()), "motion": motion, "lengths": lengths,
        "mask": torch.arange(lmax)[None, :] < lengths[:, None], "start": torch.from_numpy(starts),
        "text": text, "positions": positions, "pos_mask": pos_mask, "spans": torch.from_numpy(spans),
        "proto": torch.from_numpy(proto), "lemma": [items.lemma(int(m)) for m in idx],
        "word": [items.surface(int(m)) for m in idx], "subtext": torch.from_numpy(items.subtext[idx].astype(np.int64)),
        "num_subtexts": torch.from_numpy(items.num_subtexts[idx].astype(np.int64)),
        "caption": torch.from_numpy(items.caption[idx].copy()), "clip": [items.ids[c] for c in items.clip[idx]],
        "same_word": torch.from_numpy(same_word(items, idx)),
        "same_caption": torch.from_numpy(same_caption(items, idx)),
        "absent": torch.from_numpy(meaning_absent(items, idx, surface=surface_absent)),
    }
    if encoder is not None:
        out["tokenized"] = encoder.tokenize(text)
    return out
