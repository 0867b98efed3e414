"""Training batches of word occurrences (docs/method.md §5): which occurrences (`sample_batch`: uniform over them),
which rows each shows (`crop_window`: the caption's rows cut to the model's length, the word's segment kept inside),
and the tensors a step reads (`collate`: crops, spans on the crop, sub-token positions, prototype indices, the
false-negative masks)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mate.data.layout import HUMANML3D

from .items import Items, PrototypeVocab
from .masks import meaning_absent, same_caption, same_word


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
