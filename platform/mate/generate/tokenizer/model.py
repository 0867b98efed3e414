"""A residual VQ-VAE over normalised motion features, in MoMask's shape (Guo et al. 2024).

Encoder: a 1-D convolution to `width` channels, then two stride-2 stages (4x temporal downsampling: one token per
4 feature rows, the motion encoders' unit), each followed by dilated residual blocks, then a projection to the code
dimension. Decoder: the mirror, with nearest-neighbour upsampling. Between them, `layers` residual codebooks: layer
0 quantises the latent, each next layer the residual the previous ones left. Every code is a joint latent of all
263 channels of 4 rows, so a decoded clip's root travel and leg sweep come from the same code and move together.

Codebooks are learned by exponential moving averages of the vectors assigned to them (no codebook gradient), seeded
from the first batch, and a code that falls out of use is reset to a random latent of the current batch. During
training, quantizer dropout keeps only the first k layers (k uniform) with probability `drop`, so that the coarse
layers carry the motion on their own (what the base-layer transformer predicts).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

DOWNSAMPLE = 4  # feature rows per token


class ResBlock(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(width, width, 1)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(F.relu(x))))


def _res_stack(width: int, depth: int, reverse: bool) -> nn.Sequential:
    dilations = [3**d for d in range(depth)]
    return nn.Sequential(*(ResBlock(width, d) for d in (reversed(dilations) if reverse else dilations)))


class Encoder(nn.Module):
    def __init__(self, motion_dim: int, width: int, code_dim: int, depth: int):
        super().__init__()
        stages = [nn.Conv1d(motion_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(2):
            stages += [nn.Conv1d(width, width, 4, stride=2, padding=1), _res_stack(width, depth, reverse=True)]
        stages.append(nn.Conv1d(width, code_dim, 3, padding=1))
        self.net = nn.Sequential(*stages)

    def forward(self, x):  # (B, T, D) -> (B, T / 4, code_dim)
        return self.net(x.transpose(1, 2)).transpose(1, 2)


class Decoder(nn.Module):
    def __init__(self, motion_dim: int, width: int, code_dim: int, depth: int):
        super().__init__()
        stages = [nn.Conv1d(code_dim, width, 3, padding=1), nn.ReLU()]
        for _ in range(2):
            stages += [_res_stack(width, depth, reverse=False), nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv1d(width, width, 3, padding=1)]
        stages += [nn.Conv1d(width, width, 3, padding=1), nn.ReLU(), nn.Conv1d(width, motion_dim, 3, padding=1)]
        self.net = nn.Sequential(*stages)

    def forward(self, z):  # (B, N, code_dim) -> (B, 4N, D)
        return self.net(z.transpose(1, 2)).transpose(1, 2)


class Codebook(nn.Module):
    """One codebook with EMA updates and dead-code reset; its state is all buffers (checkpointed with the model)."""

    def __init__(self, codes: int, dim: int, decay: float = 0.99, dead_below: float = 1.0, eps: float = 1e-5):
        super().__init__()
        self.codes, self.dim, self.decay, self.dead_below, self.eps = codes, dim, decay, dead_below, eps
        self.register_buffer("embed", torch.zeros(codes, dim))
        self.register_buffer("embed_sum", torch.zeros(codes, dim))
        self.register_buffer("usage", torch.zeros(codes))  # EMA of how many vectors each code takes per batch
        self.register_buffer("ready", torch.tensor(False))
        self.register_buffer("resets", torch.tensor(0))  # codes reassigned so far (a health figure)

    def nearest(self, x: torch.Tensor) -> torch.Tensor:
        """(N, dim) -> (N,) index of the nearest code (squared Euclidean)."""
        d = x.pow(2).sum(1, keepdim=True) - 2 * x @ self.embed.T + self.embed.pow(2).sum(1)[None]
        return d.argmin(1)

    @torch.no_grad()
    def _random_rows(self, x: torch.Tensor, n: int) -> torch.Tensor:
        idx = torch.randint(0, x.shape[0], (n,), device=x.device) if x.shape[0] < n else \
            torch.randperm(x.shape[0], device=x.device)[:n]
        return x[idx]

    @torch.no_grad()
    def update(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        """EMA step on the vectors `x` (N, dim) assigned to `idx`; first call: seed every code from the batch."""
        if not bool(self.ready):
            self.embed.copy_(self._random_rows(x, self.codes))
            self.embed_sum.copy_(self.embed)
            self.usage.fill_(1.0)
            self.ready.fill_(True)
        onehot = F.one_hot(idx, self.codes).to(x.dtype)
        self.usage.mul_(self.decay).add_(onehot.sum(0), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(onehot.T @ x, alpha=1 - self.decay)
        total = self.usage.sum()
        smoothed = (self.usage + self.eps) / (total + self.codes * self.eps) * total
        self.embed.copy_(self.embed_sum / smoothed[:, None])
        dead = self.usage < self.dead_below
        n_dead = int(dead.sum())
        if n_dead:  # a code nothing maps to any more takes a random latent of this batch (and one unit of usage)
            fresh = self._random_rows(x, n_dead)
            self.embed[dead] = fresh
            self.embed_sum[dead] = fresh
            self.usage[dead] = 1.0
            self.resets.add_(n_dead)


class ResidualVQ(nn.Module):
    def __init__(self, layers: int, codes: int, dim: int, *, decay: float = 0.99, drop: float = 0.2):
        super().__init__()
        self.books = nn.ModuleList(Codebook(codes, dim, decay) for _ in range(layers))
        self.drop = drop

    def forward(self, z: torch.Tensor, active: int | None = None):
        """z (B, N, dim) -> (quantised with straight-through gradients, codes (B, N, layers) with -1 for dropped
        layers, commitment loss). In training mode the codebooks learn from `z` and quantizer dropout applies."""
        b, n, d = z.shape
        flat = z.reshape(-1, d)
        layers = len(self.books)
        if active is None:
            active = layers
            if self.training and layers > 1 and float(torch.rand(())) < self.drop:
                active = int(torch.randint(1, layers + 1, ()))
        residual, out, commit = flat, torch.zeros_like(flat), flat.new_zeros(())
        codes = torch.full((flat.shape[0], layers), -1, dtype=torch.long, device=z.device)
        for i, book in enumerate(self.books[:active]):
            idx = book.nearest(residual.detach())
            if self.training:
                book.update(residual.detach(), idx)
            q = book.embed[idx]
            commit = commit + F.mse_loss(residual, q.detach())
            out = out + residual + (q - residual).detach()  # straight-through: the gradient reaches the encoder
            residual = residual - q.detach()
            codes[:, i] = idx
        return out.reshape(b, n, d), codes.reshape(b, n, layers), commit / max(active, 1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (..., k) of the first k layers (-1: skip) -> the summed code vectors (..., dim)."""
        out = None
        for i in range(codes.shape[-1]):
            c = codes[..., i]
            v = self.books[i].embed[c.clamp(min=0)] * (c >= 0)[..., None].to(self.books[i].embed.dtype)
            out = v if out is None else out + v
        return out


class MotionTokenizer(nn.Module):
    def __init__(self, motion_dim: int, *, width: int = 512, code_dim: int = 512, depth: int = 3, layers: int = 6,
                 codes: int = 512, decay: float = 0.99, drop: float = 0.2):
        super().__init__()
        self.config = {"motion_dim": motion_dim, "width": width, "code_dim": code_dim, "depth": depth,
                       "layers": layers, "codes": codes, "decay": decay, "drop": drop}
        self.encoder = Encoder(motion_dim, width, code_dim, depth)
        self.quantizer = ResidualVQ(layers, codes, code_dim, decay=decay, drop=drop)
        self.decoder = Decoder(motion_dim, width, code_dim, depth)

    @property
    def layers(self) -> int:
        return len(self.quantizer.books)

    @property
    def codes(self) -> int:
        return self.quantizer.books[0].codes

    def forward(self, x: torch.Tensor):
        """x (B, T, D) normalised motion, T a multiple of 4 -> (reconstruction, codes, commitment loss)."""
        if x.shape[1] % DOWNSAMPLE:
            raise ValueError(f"{x.shape[1]} rows is not a multiple of {DOWNSAMPLE}")
        q, codes, commit = self.quantizer(self.encoder(x))
        return self.decoder(q), codes, commit

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) normalised motion -> (B, T / 4, layers) codes (eval mode: no codebook learning, no dropout)."""
        was = self.training
        self.eval()
        try:
            return self.quantizer(self.encoder(x))[1]
        finally:
            self.train(was)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, N, k) codes of the first k layers -> (B, 4N, D) normalised motion."""
        return self.decoder(self.quantizer.lookup(codes))
