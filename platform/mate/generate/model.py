"""The MDM-style denoising transformer: noisy motion + timestep + text -> predicted clean motion x0.

p motion frames become one token through a linear layer (temporal patching: attention cost falls by p^2, which is
what makes CPU budgets workable). A condition token (timestep embedding, plus the projected sentence feature when
`cond="sentence"`) is prepended; with `cond="tokens"` every block also cross-attends over the text's token features.
Classifier-free guidance needs an unconditional model: a learned null vector (sentence) or a learned null token
(tokens) stands in for dropped text. Padded frames are zeroed on the way in and padded tokens are masked as
attention keys, so a motion's prediction never depends on what its padding holds or on how far it was padded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .text import TextBatch


def sinusoid(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N,) positions or timesteps -> (N, dim) sinusoidal features."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float()[:, None] * freqs[None]
    out = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(out, (0, dim - 2 * half))


@dataclass
class Condition:
    """The text after projection, computed once per batch and reused at every sampler step."""

    vector: torch.Tensor | None  # (B, hidden): added to the timestep embedding (cond=sentence)
    memory: torch.Tensor | None  # (B, L, hidden): cross-attention keys/values (cond=tokens)
    memory_mask: torch.Tensor | None  # (B, L) bool, True on real tokens

    def cat(self, other: Condition) -> Condition:
        """This batch's rows followed by `other`'s (a conditional and an unconditional pass in one batch)."""
        return Condition(*(None if a is None else torch.cat([a, b]) for a, b in zip(
            (self.vector, self.memory, self.memory_mask), (other.vector, other.memory, other.memory_mask))))


def project_text(cond: str, proj: nn.Linear, null: torch.Tensor, text: TextBatch,
                 drop: torch.Tensor | None = None) -> Condition:
    """The text as a generator reads it: the projected sentence feature (`cond="sentence"`) or the projected token
    features as cross-attention memory (`cond="tokens"`); rows where `drop` (B,) is True get the learned null
    vector, or a memory of the single null token, instead (the unconditional model of classifier-free guidance)."""
    if cond == "sentence":
        vec = proj(text.sentence)
        if drop is not None:
            vec = torch.where(drop[:, None], null.to(vec.dtype), vec)
        return Condition(vec, None, None)
    memory, mask = proj(text.tokens), text.mask
    if drop is not None and bool(drop.any()):
        empty = torch.zeros_like(memory)
        empty[:, 0] = null.to(memory.dtype)
        memory = torch.where(drop[:, None, None], empty, memory)
        first = torch.zeros_like(mask)
        first[:, 0] = True
        mask = torch.where(drop[:, None], first, mask)
    return Condition(None, memory, mask)


class Block(nn.Module):
    """Pre-norm transformer block: self-attention, optional cross-attention over the text tokens, MLP."""

    def __init__(self, hidden: int, heads: int, dropout: float, cross: bool):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden)
        self.attn = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True)
        self.cross = nn.MultiheadAttention(hidden, heads, dropout=dropout, batch_first=True) if cross else None
        self.norm_c = nn.LayerNorm(hidden) if cross else None
        self.norm2 = nn.LayerNorm(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(4 * hidden, hidden))
        self.drop = nn.Dropout(dropout)

    def forward(self, x, pad, memory=None, memory_pad=None):
        h = self.norm1(x)
        x = x + self.drop(self.attn(h, h, h, key_padding_mask=pad, need_weights=False)[0])
        if self.cross is not None:
            h = self.norm_c(x)
            x = x + self.drop(self.cross(h, memory, memory, key_padding_mask=memory_pad, need_weights=False)[0])
        return x + self.drop(self.mlp(self.norm2(x)))


class Denoiser(nn.Module):
    def __init__(self, motion_dim: int, sentence_dim: int, token_dim: int, *, cond: str = "sentence", patch: int = 1,
                 layers: int = 4, hidden: int = 128, heads: int = 4, dropout: float = 0.1,
                 skip: torch.Tensor | None = None):
        super().__init__()
        if cond not in ("sentence", "tokens"):
            raise ValueError(f"cond must be 'sentence' or 'tokens', got {cond!r}")
        self.motion_dim, self.cond, self.patch, self.hidden = motion_dim, cond, patch, hidden
        self.inp = nn.Linear(patch * motion_dim, hidden)
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.text = nn.Linear(sentence_dim if cond == "sentence" else token_dim, hidden)
        self.null = nn.Parameter(torch.randn(hidden) * 0.02)  # the dropped text: a vector or a single memory token
        self.blocks = nn.ModuleList(Block(hidden, heads, dropout, cross=cond == "tokens") for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, patch * motion_dim)
        # optional full-rank path from the noisy patch to the prediction, scaled by skip[t] (sqrt alpha_bar): `out`
        # alone spans only `hidden` of the patch x motion_dim dimensions, too few to hold a foot's millimetres
        # (bench/skate_floor.py). Zero at first, so training starts from plain x0 prediction.
        self.skip = None
        if skip is not None:
            self.skip = nn.Linear(patch * motion_dim, patch * motion_dim, bias=False)
            nn.init.zeros_(self.skip.weight)
            self.register_buffer("skip_scale", skip.float(), persistent=False)

    def condition(self, text: TextBatch, drop: torch.Tensor | None = None) -> Condition:
        """Project the text; rows where `drop` (B,) is True get the null condition instead."""
        return project_text(self.cond, self.text, self.null, text, drop)

    def forward(self, x: torch.Tensor, t: torch.Tensor, frames: torch.Tensor, cond: Condition) -> torch.Tensor:
        """x (B, T, D) noisy motion with T a multiple of the patch, t (B,) steps, frames (B, T) bool real rows ->
        (B, T, D) predicted x0 (padded rows are meaningless)."""
        b, n_frames, d = x.shape
        p = self.patch
        if n_frames % p:
            raise ValueError(f"{n_frames} frames is not a multiple of the patch size {p}")
        n = n_frames // p
        x = (x * frames[..., None].to(x.dtype)).reshape(b, n, p * d)
        tokens_real = frames.reshape(b, n, p).any(-1)
        h = self.inp(x) + sinusoid(torch.arange(n, device=x.device), self.hidden)[None]
        c = self.time(sinusoid(t, self.hidden))
        if cond.vector is not None:
            c = c + cond.vector
        h = torch.cat([c[:, None].to(h.dtype), h], dim=1)
        pad = torch.cat([torch.zeros(b, 1, dtype=torch.bool, device=x.device), ~tokens_real], dim=1)
        memory_pad = None if cond.memory_mask is None else ~cond.memory_mask
        for block in self.blocks:
            h = block(h, pad, cond.memory, memory_pad)
        out = self.out(self.norm(h[:, 1:]))
        if self.skip is not None:
            out = out + self.skip_scale[t].to(out.dtype)[:, None, None] * self.skip(x)
        return out.reshape(b, n_frames, d)
