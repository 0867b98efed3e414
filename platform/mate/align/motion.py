"""The motion side of MATE training (docs/method.md §6), trained jointly and discarded after alignment.

`MotionEncoder`: normalised features (B, T, D_in) -> token features F (B, ceil(T / 4), H) for the word-guided
attention, their mask (valid tokens: max(T_b // 4, 1), as in `mate.align.prior.token_lengths`), and the clip feature
f_m (B, D) for L_sent (a masked mean over valid tokens and an MLP head). Two stride-2 convolutions downsample time
4x (the grid the prior is built on), then residual convolutions add a few tokens of context; an optional small
transformer layer gives clip-wide context (the architecture is not published: ours, TMR-like).

`MotionDecoder`: reconstructs the normalised motion from f_m alone (L_rec, `mate.align.losses.loss_rec`). An MLP maps
f_m to K anchor vectors; each clip's own frames 0..T_b-1 are placed on the anchors' [0, K-1] axis and linearly
interpolated (so a short and a long clip both see the whole anchor trajectory), then residual convolutions and a
linear map give (B, T, D_in). Rows beyond T_b are zeroed inside the body (a clip decodes the same alone or in a
batch) and come out as filler, masked out by L_rec.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .prior import DOWNSAMPLE, token_lengths

__all__ = ["MotionDecoder", "MotionEncoder", "MotionEncoding", "frame_mask"]


def frame_mask(lengths: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, T) bool, True on each clip's valid rows."""
    lengths = torch.as_tensor(lengths)
    return torch.arange(num_frames, device=lengths.device)[None] < lengths[:, None]


class _ResConv(nn.Module):
    """x + GELU(LayerNorm(conv(x))), the norm per time step over channels (so padding never enters statistics)."""

    def __init__(self, width: int, kernel: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2)
        self.norm = nn.LayerNorm(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        h = self.norm(self.conv(x).transpose(1, 2)).transpose(1, 2)
        return x + nn.functional.gelu(h)


class MotionEncoding(NamedTuple):
    tokens: torch.Tensor  # (B, L, H) token features F (0 on padded tokens)
    mask: torch.Tensor  # (B, L) bool, valid tokens
    clip: torch.Tensor  # (B, D) clip feature f_m


class MotionEncoder(nn.Module):
    """Normalised motion -> token features, their mask and the clip feature.

    Every stage zeroes what lies past each clip's valid length (rows >= T_b, first-stage steps >= T_b // 2, tokens
    >= max(T_b // 4, 1)), so a clip's outputs do not depend on how far the batch pads it (nor on what the padding
    holds): a clip gives the same F and f_m alone or in any batch.
    """

    def __init__(self, in_dim: int, hidden: int = 128, dim: int = 128, blocks: int = 2, context_layers: int = 0,
                 heads: int = 4):
        super().__init__()
        self.downsample = DOWNSAMPLE
        self.down1 = nn.Conv1d(in_dim, hidden, 4, 2, 1)
        self.down2 = nn.Conv1d(hidden, hidden, 4, 2, 1)
        self.blocks = nn.ModuleList(_ResConv(hidden) for _ in range(blocks))
        self.context = None
        if context_layers > 0:
            layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout=0.0, batch_first=True,
                                               norm_first=True)
            self.context = nn.TransformerEncoder(layer, context_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, motion: torch.Tensor, lengths: torch.Tensor) -> MotionEncoding:
        """motion (B, T, D_in) normalised features (anything past each length); lengths (B,) valid rows.
        Returns tokens (B, ceil(T / 4), H), mask (B, ceil(T / 4)) and f_m (B, D)."""
        t, ds = motion.shape[1], self.downsample
        lengths = torch.as_tensor(lengths, device=motion.device).long()
        pad = max(-(-t // ds), 1) * ds - t  # to a multiple of 4 (at least 4): ceil(T / 4) tokens
        x = motion * frame_mask(lengths, t)[..., None].to(motion.dtype)
        x = nn.functional.pad(x.transpose(1, 2), (0, pad))  # (B, D_in, T')
        x = nn.functional.gelu(self.down1(x))
        x = x * frame_mask(torch.div(lengths, 2, rounding_mode="floor"), x.shape[-1])[:, None].to(x.dtype)
        x = nn.functional.gelu(self.down2(x))
        mask = frame_mask(token_lengths(lengths, ds), x.shape[-1])
        keep = mask[:, None].to(x.dtype)
        x = x * keep
        for block in self.blocks:
            x = block(x) * keep
        tok = x.transpose(1, 2)  # (B, L, H)
        if self.context is not None:
            tok = self.context(tok, src_key_padding_mask=~mask) * mask[..., None].to(tok.dtype)
        m = mask[..., None].to(tok.dtype)
        pooled = (tok * m).sum(1) / m.sum(1)
        return MotionEncoding(tok, mask, self.head(pooled))


class MotionDecoder(nn.Module):
    def __init__(self, dim: int, out_dim: int, hidden: int = 128, anchors: int = 16, blocks: int = 2):
        super().__init__()
        if anchors < 2:
            raise ValueError(f"the decoder needs at least 2 anchors, got {anchors}")
        self.anchors, self.hidden = anchors, hidden
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, anchors * hidden))
        self.body = nn.ModuleList(_ResConv(hidden, 5) for _ in range(blocks))
        self.out = nn.Linear(hidden, out_dim)

    def forward(self, clip: torch.Tensor, lengths: torch.Tensor, num_frames: int | None = None) -> torch.Tensor:
        """clip (B, D) -> (B, T, D_in), T = num_frames (default max(lengths))."""
        lengths = torch.as_tensor(lengths, device=clip.device)
        t = int(lengths.max()) if num_frames is None else int(num_frames)
        b, k = len(clip), self.anchors
        anchor = self.mlp(clip).view(b, k, self.hidden)
        frames = torch.arange(t, device=clip.device, dtype=clip.dtype)[None]  # (1, T)
        span = (lengths.to(clip.dtype) - 1).clamp(min=1)[:, None]
        pos = (frames / span).clamp(max=1.0) * (k - 1)  # (B, T) in [0, K-1]
        i0 = pos.floor().long().clamp(max=k - 2)
        frac = (pos - i0.to(pos.dtype))[..., None]
        idx0 = i0[..., None].expand(b, t, self.hidden)
        a0, a1 = anchor.gather(1, idx0), anchor.gather(1, idx0 + 1)
        keep = frame_mask(lengths, t)[:, None].to(clip.dtype)  # (B, 1, T): filler rows are 0 inside the body
        x = (a0 + frac * (a1 - a0)).transpose(1, 2) * keep  # (B, hidden, T)
        for block in self.body:
            x = block(x) * keep
        return self.out(x.transpose(1, 2))
