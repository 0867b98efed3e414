"""A small contrastive text/motion dual encoder in the spirit of TMR.

Motion tower: two strided convolutions (4x in time, like Guo's movement encoder) and residual convolutions with a
few tokens of context give *local* per-token features; the clip embedding is an MLP head on their mean. Because
the head sees only a mean of local features, every window of a clip can be scored from prefix sums of one encoder
pass (`window_head`), which the optimal partition relies on (docs/method.md §4).
Text tower: a small transformer layer over the frozen base LM's token features (it reads the tokens, not only a
pooled vector), mean-pooled and projected into the same space.
"""

from __future__ import annotations

import torch
from torch import nn

DOWNSAMPLE = 4


class _ResConv(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel_size=3, padding=1)
        self.norm = nn.GroupNorm(1, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + nn.functional.gelu(self.norm(self.conv(x)))


class MotionTower(nn.Module):
    def __init__(self, in_dim: int, hidden: int, dim: int, blocks: int = 2):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv1d(in_dim, hidden, 4, 2, 1), nn.GELU(), nn.Conv1d(hidden, hidden, 4, 2, 1), nn.GELU(),
            *[_ResConv(hidden) for _ in range(blocks)],
        )
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def tokens(self, motion: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised features -> (B, T // 4, H) local token features."""
        return self.stem(motion.transpose(1, 2)).transpose(1, 2)

    def forward(self, motion: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tok = self.tokens(motion)
        n_tok = (lengths // DOWNSAMPLE).clamp(min=1).to(tok.device)
        mask = torch.arange(tok.shape[1], device=tok.device)[None] < n_tok[:, None]
        pooled = (tok * mask[..., None]).sum(1) / n_tok[:, None].to(tok.dtype)
        return self.head(pooled), tok


class TextTower(nn.Module):
    def __init__(self, in_dim: int, hidden: int, dim: int, layers: int = 1, max_tokens: int = 128):
        super().__init__()
        self.inp = nn.Linear(in_dim, hidden)
        self.pos = nn.Parameter(torch.zeros(1, max_tokens, hidden))
        layer = nn.TransformerEncoderLayer(hidden, nhead=4, dim_feedforward=2 * hidden, dropout=0.1,
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(hidden, dim)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.inp(tokens) + self.pos[:, : tokens.shape[1]]
        x = self.encoder(x, src_key_padding_mask=~mask)
        m = mask[..., None].to(x.dtype)
        return self.out((x * m).sum(1) / m.sum(1).clamp(min=1.0))


class RetrievalModel(nn.Module):
    def __init__(self, motion_dim: int, text_dim: int, hidden: int = 256, dim: int = 128, text_layers: int = 1):
        super().__init__()
        self.config = dict(motion_dim=motion_dim, text_dim=text_dim, hidden=hidden, dim=dim, text_layers=text_layers)
        self.motion = MotionTower(motion_dim, hidden, dim)
        self.text = TextTower(text_dim, hidden, dim, text_layers)

    def encode_motion(self, motion: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.motion(motion, lengths)[0]

    def encode_text(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.text(tokens, mask)

    def window_head(self, window_means: torch.Tensor) -> torch.Tensor:
        """Embed mean token features of windows (any leading shape, last dim H): the partition's `pool`."""
        return self.motion.head(window_means)


def info_nce(text: torch.Tensor, motion: torch.Tensor, temperature: float, not_negative: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE; `not_negative[i, j]` (i != j) masks pairs that are not really negatives."""
    t = nn.functional.normalize(text, dim=-1)
    m = nn.functional.normalize(motion, dim=-1)
    logits = t @ m.T / temperature
    eye = torch.eye(len(t), dtype=torch.bool, device=t.device)
    logits = logits.masked_fill(not_negative & ~eye, float("-inf"))
    target = torch.arange(len(t), device=t.device)
    return 0.5 * (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target))
