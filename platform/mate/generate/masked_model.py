"""MoMask's two transformers over motion tokens (Guo et al. 2024), conditioned on text as the diffusion model is.

`MaskedTransformer` reads the base codebook's tokens with some replaced by [MASK] and predicts the originals (a
bidirectional transformer, the masked-token model of MaskGIT). `ResidualTransformer` reads the sum of the code
vectors of layers 0..j-1 and a learned embedding of j, and predicts layer j's codes at every position. Text enters
as a prefix token (`cond="sentence"`: the projected sentence feature, plus the layer embedding for the residual
model) or through cross-attention over the projected token features (`cond="tokens"`); a learned null vector or null
memory token stands in for dropped text (classifier-free guidance). Padded positions are masked as attention keys,
so a motion's prediction never depends on how far a batch pads it.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import Block, Condition, project_text, sinusoid
from .text import TextBatch


class _TokenTransformer(nn.Module):
    """Prefix token + position-encoded inputs through pre-norm blocks; logits over the codebook per position."""

    def __init__(self, codes: int, sentence_dim: int, token_dim: int, *, cond: str, layers: int, hidden: int,
                 heads: int, dropout: float):
        super().__init__()
        if cond not in ("sentence", "tokens"):
            raise ValueError(f"cond must be 'sentence' or 'tokens', got {cond!r}")
        self.codes, self.cond, self.hidden = codes, cond, hidden
        self.text = nn.Linear(sentence_dim if cond == "sentence" else token_dim, hidden)
        self.null = nn.Parameter(torch.randn(hidden) * 0.02)
        self.start = nn.Parameter(torch.randn(hidden) * 0.02)  # the prefix token when the text is not a vector
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout, cross=cond == "tokens") for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.head = nn.Linear(hidden, codes)

    def condition(self, text: TextBatch, drop: torch.Tensor | None = None) -> Condition:
        return project_text(self.cond, self.text, self.null, text, drop)

    def _run(self, h: torch.Tensor, valid: torch.Tensor, cond: Condition, prefix: torch.Tensor | None) -> torch.Tensor:
        b, n, _ = h.shape
        h = h + sinusoid(torch.arange(n, device=h.device), self.hidden)[None].to(h.dtype)
        first = self.start.expand(b, -1) if cond.vector is None else cond.vector
        if prefix is not None:
            first = first + prefix
        h = torch.cat([first[:, None].to(h.dtype), h], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=h.device), ~valid], dim=1)
        memory_pad = None if cond.memory_mask is None else ~cond.memory_mask
        for block in self.blocks:
            h = block(h, pad, cond.memory, memory_pad)
        return self.head(self.norm(h[:, 1:]))


class MaskedTransformer(_TokenTransformer):
    """Base-layer codes with [MASK] (id `codes`) and [PAD] (id `codes + 1`) -> logits over the codes."""

    def __init__(self, codes: int, sentence_dim: int, token_dim: int, **kw):
        super().__init__(codes, sentence_dim, token_dim, **kw)
        self.embed = nn.Embedding(codes + 2, self.hidden)

    @property
    def mask_id(self) -> int:
        return self.codes

    @property
    def pad_id(self) -> int:
        return self.codes + 1

    def forward(self, ids: torch.Tensor, valid: torch.Tensor, cond: Condition) -> torch.Tensor:
        """ids (B, N) long, valid (B, N) bool real positions -> (B, N, codes) logits."""
        return self._run(self.embed(torch.where(valid, ids, self.pad_id)), valid, cond, None)


class ResidualTransformer(_TokenTransformer):
    """(the summed code vectors of layers < j, j) -> logits over layer j's codes, j in 1 .. layers - 1."""

    def __init__(self, codes: int, code_dim: int, layers_q: int, sentence_dim: int, token_dim: int, **kw):
        super().__init__(codes, sentence_dim, token_dim, **kw)
        self.inp = nn.Linear(code_dim, self.hidden)
        self.layer = nn.Embedding(layers_q, self.hidden)

    def forward(self, latent: torch.Tensor, j: torch.Tensor, valid: torch.Tensor, cond: Condition) -> torch.Tensor:
        """latent (B, N, code_dim), j (B,) long, valid (B, N) bool -> (B, N, codes) logits for layer j."""
        h = self.inp(latent) * valid[..., None].to(latent.dtype)
        return self._run(h, valid, cond, self.layer(j))
