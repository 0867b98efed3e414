"""The diffusion noise schedule and the DDIM sampler step, for a network that predicts the clean motion x0.

Cosine schedule (Nichol & Dhariwal 2021), as MDM uses: alpha_bar(t) = f(t)/f(0), f(t) = cos^2(((t/T + s)/(1 + s))
pi/2), betas clipped at 0.999. Index t in [0, T) is the t-th noising step, so alpha_bar[0] < 1 (a little noise) and
alpha_bar[T-1] ~ 0 (almost pure noise). DDIM with eta 0 is deterministic given the starting noise.
"""

from __future__ import annotations

import math

import numpy as np
import torch


class CosineSchedule:
    def __init__(self, steps: int, s: float = 0.008):
        if steps < 1:
            raise ValueError(f"the diffusion needs at least one step, got {steps}")
        self.steps = steps

        def f(u):
            return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

        betas = np.array([min(1 - f((i + 1) / steps) / f(i / steps), 0.999) for i in range(steps)], np.float64)
        self.alphas_cumprod = torch.tensor(np.cumprod(1.0 - betas), dtype=torch.float64)

    def alpha_bar(self, t: torch.Tensor) -> torch.Tensor:
        """alpha_bar at integer steps t (any shape); t = -1 means no noise at all (alpha_bar 1)."""
        ab = self.alphas_cumprod.to(t.device)
        return torch.where(t >= 0, ab[t.clamp(min=0)], torch.ones((), dtype=ab.dtype, device=t.device)).float()

    @staticmethod
    def _expand(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return a.reshape(a.shape + (1,) * (x.ndim - a.ndim))

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise, t of shape (B,)."""
        ab = self._expand(self.alpha_bar(t), x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def ddim_timesteps(self, steps: int) -> list[int]:
        """`steps` distinct steps evenly spaced from T-1 (pure noise) down to 0 (one step: T-1 only; at most T)."""
        steps = max(1, min(int(steps), self.steps))
        ts = np.unique(np.round(np.linspace(self.steps - 1, 0, steps)).astype(np.int64))
        return ts[::-1].tolist()

    def ddim_step(self, x_t: torch.Tensor, x0: torch.Tensor, t: int, t_prev: int) -> torch.Tensor:
        """DDIM (eta 0) from step t to t_prev (-1: the end) given the predicted x0: re-noise x0 with the implied eps."""
        ab = float(self.alphas_cumprod[t])
        ab_prev = 1.0 if t_prev < 0 else float(self.alphas_cumprod[t_prev])
        eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(max(1 - ab, 1e-12))
        return math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
