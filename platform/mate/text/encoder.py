"""A frozen language model whose only trainable part is a chosen set of word-embedding rows.

Everything a MATE stage needs from the text side goes through `TextEncoder`: token features, the family's sentence
feature, which sub-tokens make up each word (a word's embedding is the mean of its sub-token rows), and the
`AlignedRows` artifact that carries the trained rows elsewhere.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn

from . import families as F
from .rows import RowOverrideEmbedding

WORD_RE = re.compile(r"[A-Za-z0-9]+(?:['\-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class Word:
    text: str
    start: int  # character offsets in the caption
    end: int
    tokens: tuple[int, ...]  # positions in the tokenized sequence (special tokens excluded)


@dataclass
class EncoderOutput:
    tokens: torch.Tensor  # (B, L, H) last hidden states
    mask: torch.Tensor  # (B, L) bool, True on real tokens
    sentence: torch.Tensor  # (B, S) the family's sentence feature
    input_ids: torch.Tensor  # (B, L)


class TextEncoder(nn.Module):
    """A Hugging Face encoder from a local folder, frozen, with optional trainable word-embedding rows."""

    def __init__(self, model: nn.Module, tokenizer, family: str, folder: Path, normalize: bool, max_length: int):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.family = family
        self.folder = folder
        self.normalize = normalize
        self.max_length = max_length
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._folder_hash: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike | None = None, family: str = "auto", max_length: int = 77) -> "TextEncoder":
        folder = F.resolve_path(path)
        fam = F.detect_family(folder, family)
        model = F.load_model(folder, fam)
        tok = F.load_tokenizer(folder)
        limit = min(max_length, getattr(tok, "model_max_length", max_length) or max_length)
        return cls(model, tok, fam, folder, F.normalizes(folder), limit)

    # -- identity -------------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return getattr(self.model.config, "_name_or_path", "") or self.folder.name

    @property
    def folder_hash(self) -> str:
        if self._folder_hash is None:
            self._folder_hash = F.folder_hash(self.folder)
        return self._folder_hash

    @property
    def embedding(self) -> nn.Module:
        return self.model.get_input_embeddings()

    @property
    def base_table(self) -> torch.Tensor:
        emb = self.embedding
        return emb.base.weight if isinstance(emb, RowOverrideEmbedding) else emb.weight

    # -- trainable rows -------------------------------------------------------------------------------------------
    def token_ids(self, captions: Iterable[str]) -> list[int]:
        """Sorted ids of the non-special tokens the captions use (the rows MATE trains)."""
        special = set(self.tokenizer.all_special_ids)
        ids: set[int] = set()
        texts = list(captions)
        for start in range(0, len(texts), 512):
            enc = self.tokenizer(texts[start : start + 512], add_special_tokens=False, truncation=True,
                                 max_length=self.max_length)
            for seq in enc["input_ids"]:
                ids.update(seq)
        return sorted(ids - special)

    def set_trainable_rows(self, ids: Sequence[int]) -> RowOverrideEmbedding:
        """Make exactly these rows trainable (replacing any previous selection); every other weight stays frozen."""
        emb = self.embedding
        base = emb.base if isinstance(emb, RowOverrideEmbedding) else emb
        override = RowOverrideEmbedding(base, list(ids)).to(base.weight.device)
        self.model.set_input_embeddings(override)
        return override

    @property
    def rows(self) -> RowOverrideEmbedding | None:
        emb = self.embedding
        return emb if isinstance(emb, RowOverrideEmbedding) else None

    def aligned_rows(self):
        from .artifact import AlignedRows

        if self.rows is None:
            raise ValueError("no trainable rows selected: call set_trainable_rows first")
        return AlignedRows.from_encoder(self)

    # -- features -------------------------------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self.base_table.device

    def tokenize(self, texts: Sequence[str]):
        texts = list(texts)
        if not texts:
            raise F.EncoderError("no captions to encode")
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise F.EncoderError(f"caption {i} is empty: every caption needs at least one word")
        return self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                              return_tensors="pt", return_offsets_mapping=True, return_special_tokens_mask=True)

    def forward(self, texts: Sequence[str] | None = None, batch=None) -> EncoderOutput:
        batch = batch if batch is not None else self.tokenize(texts)
        ids = batch["input_ids"].to(self.device)
        attn = batch["attention_mask"].to(self.device)
        out = self.model(input_ids=ids, attention_mask=attn)
        return EncoderOutput(out.last_hidden_state, attn.bool(), F.pool(self.family, out, attn, self.normalize), ids)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 256) -> EncoderOutput:
        """Frozen features in batches (no graph); token features padded to the longest caption overall."""
        outs = [self(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        width = max(o.tokens.shape[1] for o in outs)

        def pad(x, value=0):
            return nn.functional.pad(x, (0, 0, 0, width - x.shape[1]) if x.ndim == 3 else (0, width - x.shape[1]),
                                     value=value)

        return EncoderOutput(
            torch.cat([pad(o.tokens) for o in outs]), torch.cat([pad(o.mask, False) for o in outs]),
            torch.cat([o.sentence for o in outs]), torch.cat([pad(o.input_ids) for o in outs]),
        )

    # -- words ----------------------------------------------------------------------------------------------------
    def words(self, text: str) -> list[Word]:
        """The caption's words with the positions of their sub-tokens in `tokenize([text])`."""
        enc = self.tokenize([text])
        offsets = enc["offset_mapping"][0].tolist()
        special = enc["special_tokens_mask"][0].tolist()
        words = []
        for m in WORD_RE.finditer(text):
            toks = tuple(i for i, ((a, b), s) in enumerate(zip(offsets, special))
                         if not s and b > a and a < m.end() and b > m.start())
            if toks:
                words.append(Word(m.group(0), m.start(), m.end(), toks))
        return words

    def word_vectors(self, text: str) -> tuple[list[Word], torch.Tensor]:
        """Each word's embedding: the mean of its sub-token rows (trained rows where selected; differentiable)."""
        words = self.words(text)
        ids = self.tokenize([text])["input_ids"][0].to(self.device)
        rows = self.embedding(ids)
        if not words:
            return words, rows.new_zeros((0, rows.shape[-1]))
        return words, torch.stack([rows[list(w.tokens)].mean(0) for w in words])
