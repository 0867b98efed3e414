"""What a generator reads of the text: the sentence feature and the token features of a frozen text encoder.

`TextFeatures` is the one interface every generator conditions on, so the baseline (base-model features, usually
precomputed once per dataset in `mate.text.cached`) and MATE (the encoder with aligned rows) are swapped without the
generator knowing which it got. The encoder is frozen while a generator trains, so a text's features never change
and are computed at most once (looked up in the cache, or encoded once and remembered).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from mate.text.cached import FrozenFeatures

PROBE_TEXT = "a person walks forward"


@dataclass
class TextBatch:
    sentence: torch.Tensor  # (B, S) float32
    tokens: torch.Tensor  # (B, L, H) float32, zero on padding
    mask: torch.Tensor  # (B, L) bool, True on real tokens

    def to(self, device: torch.device | str) -> TextBatch:
        return TextBatch(self.sentence.to(device), self.tokens.to(device), self.mask.to(device))

    def __len__(self) -> int:
        return self.sentence.shape[0]


@runtime_checkable
class TextFeatures(Protocol):
    """Texts -> features. Implementations must be deterministic: the same text always gives the same features."""

    sentence_dim: int
    token_dim: int

    def __call__(self, texts: Sequence[str]) -> TextBatch: ...


def pad_tokens(rows: Sequence[torch.Tensor], width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_i, H) token features -> (B, Lmax, H) float32 zero-padded and the (B, Lmax) mask."""
    lmax = max(len(r) for r in rows) if width is None else width
    out = torch.zeros(len(rows), lmax, rows[0].shape[1])
    mask = torch.zeros(len(rows), lmax, dtype=torch.bool)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
        mask[i, : len(r)] = True
    return out, mask


class EncoderFeatures:
    """Features of a frozen `mate.text.encoder.TextEncoder`, read from a `FrozenFeatures` cache where it has the text.

    Texts the cache lacks are encoded under no_grad (in eval mode, whatever mode the caller left the encoder in) and
    remembered (`memo` texts, least recently used dropped first). Fresh token features are rounded through float16 as
    the cache stores them, so a text gets the same features whether it was cached or not. The encoder must not change
    while this object is in use (build a new one after changing its rows).
    """

    def __init__(self, encoder, cache: FrozenFeatures | None = None, *, memo: int = 8192, batch_size: int = 128):
        self.encoder, self.cache, self.memo_size, self.batch_size = encoder, cache, memo, batch_size
        self._memo: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._dims: tuple[int, int] | None = None
        if cache is not None:
            self._dims = (int(cache.sentence.shape[1]), int(cache.tokens.shape[1]))

    @property
    def sentence_dim(self) -> int:
        return self._probe()[0]

    @property
    def token_dim(self) -> int:
        return self._probe()[1]

    def _probe(self) -> tuple[int, int]:
        if self._dims is None:
            (sent, toks), = self._encode([PROBE_TEXT])
            self._dims = (int(sent.shape[0]), int(toks.shape[1]))
        return self._dims

    def _encode(self, texts: list[str]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        was_training = self.encoder.training
        self.encoder.eval()
        try:
            with torch.no_grad():
                out = self.encoder.encode(texts, batch_size=self.batch_size)
        finally:
            self.encoder.train(was_training)
        sent = out.sentence.float().cpu()
        toks = out.tokens.to(torch.float16).float().cpu()
        mask = out.mask.cpu()
        return [(sent[i], toks[i][mask[i]]) for i in range(len(texts))]

    def _lookup(self, text: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        if self.cache is not None and text in self.cache.index:
            i = self.cache.index[text]
            return self.cache.sentence[i].float(), self.cache.token_features(i)
        hit = self._memo.get(text)
        if hit is not None:
            self._memo.move_to_end(text)
        return hit

    def __call__(self, texts: Sequence[str]) -> TextBatch:
        texts = list(texts)
        found = {t: f for t in dict.fromkeys(texts) if (f := self._lookup(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            for t, f in zip(missing, self._encode(missing)):
                found[t] = f
                if self.memo_size > 0:
                    self._memo[t] = f
            while len(self._memo) > self.memo_size:
                self._memo.popitem(last=False)
        sentence = torch.stack([found[t][0] for t in texts])
        tokens, mask = pad_tokens([found[t][1] for t in texts])
        return TextBatch(sentence, tokens, mask)
