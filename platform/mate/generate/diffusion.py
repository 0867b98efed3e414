"""MDM-style text-to-motion diffusion (Tevet et al. 2023): the network predicts clean motion x0 from noisy motion.

Training: a cosine schedule over `gen.diffusion_steps`, the text dropped with probability `gen.cond_drop` (so one
network is also the unconditional model of classifier-free guidance), a loss on real rows only. Optional geometric
losses on the joints recovered from the predicted features (`gen.w_vel`, `gen.w_foot`, MDM's velocity and
foot-contact losses): the feature loss alone treats the root velocity and the legs as independent channels, so
feet slide where a real clip plants them; `gen.geo_max_t` keeps them to the low-noise steps. `gen.lr_schedule` and
`gen.ema` (sampling with a moving average of the weights) are what a short CPU budget needs to end on a settled
model rather than on the last noisy step; `gen.snr_gamma` moves the loss's weight from the high-noise steps (where
the best x0 is the blurred mean motion) to the low-noise ones that decide where a foot lands. Sampling: DDIM with
eta 0 over `steps` (default `eval.sampler_steps`) and guidance scale `gen.guidance`, deterministic given the seed.
Training runs on `mate.loop` (checkpoints, exact resume, NaN and divergence checks, time budget).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mate.config import KEYS, ConfigError, derive_seed
from mate.data.dataset import MotionDataset, collate
from mate.data.features import features_to_joints
from mate.data.skeleton import skeleton_for_dim
from mate.loop import Loop, Task

from .base import (FORMAT, Generator, autocast, begin_training, check_text_dims, default_device, epoch_batches,
                   generator_loop, learning_rate, sample_request, stage_seed)
from .model import Condition, Denoiser
from .schedule import CosineSchedule
from .text import TextBatch, TextFeatures

CONFIG_KEYS = (*(k for k in KEYS if k.startswith("gen.")), "eval.sampler_steps", "debug.nan_epoch", "debug.fail_epoch",
               "debug.hold_file")


class DiffusionGenerator(Generator):
    kind = "diffusion"

    def __init__(self, cfg: Mapping[str, Any], motion_dim: int, text_dims: tuple[int, int], *,
                 device: str | torch.device | None = None, compile: bool = False):
        values = dict(cfg)
        self.cfg = {k: values.get(k, KEYS[k].default) for k in CONFIG_KEYS}
        self.cfg["gen.seed"] = self.seed = stage_seed(values)
        c = self.cfg
        if c["gen.patch"] < 1 or c["gen.layers"] < 1 or c["gen.diffusion_steps"] < 1:
            raise ConfigError("gen.patch, gen.layers and gen.diffusion_steps must be at least 1")
        if c["gen.hidden"] % c["gen.heads"] or c["gen.hidden"] % 2:
            raise ConfigError(f"gen.hidden ({c['gen.hidden']}) must be even and a multiple of gen.heads "
                              f"({c['gen.heads']})")
        if not 0 <= c["gen.cond_drop"] < 1:
            raise ConfigError(f"gen.cond_drop must be in [0, 1), got {c['gen.cond_drop']}")
        if not 0 <= c["gen.ema"] < 1:
            raise ConfigError(f"gen.ema must be in [0, 1) (0: off), got {c['gen.ema']}")
        self.motion_dim, self.text_dims = int(motion_dim), (int(text_dims[0]), int(text_dims[1]))
        self.device = torch.device(device) if device is not None else default_device()
        self.schedule = CosineSchedule(c["gen.diffusion_steps"])
        with torch.random.fork_rng(devices=[]):  # the same weights for the same seed; the caller's RNG untouched
            torch.manual_seed(self.seed)
            self.net = Denoiser(self.motion_dim, *self.text_dims, cond=c["gen.cond"], patch=c["gen.patch"],
                                layers=c["gen.layers"], hidden=c["gen.hidden"], heads=c["gen.heads"],
                                dropout=c["gen.dropout"],
                                skip=self.schedule.alphas_cumprod.sqrt() if c["gen.skip"] else None)
        self.net.to(self.device)
        # the weights sampling uses: an exponential moving average of the trained ones when gen.ema > 0
        self.ema = copy.deepcopy(self.net).requires_grad_(False) if c["gen.ema"] else None
        self.sampling_net = self.ema if self.ema is not None else self.net
        cuda = self.device.type == "cuda"
        self._forward = torch.compile(self.net, dynamic=True) if compile and cuda else self.net
        self._sampler = self.ema if self.ema is not None else self._forward
        self.text: TextFeatures | None = None
        self.history: list[dict] = []
        self._norm: tuple[torch.Tensor, torch.Tensor] | None = None  # (mean, std) of the features: set by fit

    # -- pieces ---------------------------------------------------------------------------------------------------
    def _autocast(self):
        return autocast(self.device)

    def _padded(self, n_frames: int) -> int:
        return math.ceil(n_frames / self.net.patch) * self.net.patch

    def training_loss(self, x0: torch.Tensor, frames: torch.Tensor, text: TextBatch) -> torch.Tensor:
        """Mean squared x0 error over real rows at random steps, the text dropped at `gen.cond_drop` (global RNG)."""
        b = x0.shape[0]
        t = torch.randint(0, self.schedule.steps, (b,), device=x0.device)
        noise = torch.randn_like(x0)
        drop = torch.rand(b, device=x0.device) < self.cfg["gen.cond_drop"]
        x_t = self.schedule.q_sample(x0, t, noise)
        with self._autocast():
            pred = self._forward(x_t, t, frames, self.net.condition(text, drop)).float()
        weight = frames[..., None].to(pred.dtype)
        rows = weight.sum()
        if self.cfg["gen.snr_gamma"]:
            ab = self.schedule.alpha_bar(t)
            weight = weight * (ab / (1 - ab).clamp(min=1e-12)).clamp(max=self.cfg["gen.snr_gamma"])[:, None, None]
        loss = ((pred - x0) ** 2 * weight).sum() / (rows * x0.shape[-1]).clamp(min=1)
        if self.cfg["gen.w_vel"] or self.cfg["gen.w_foot"]:
            low_noise = t < self.cfg["gen.geo_max_t"] * self.schedule.steps
            vel, foot = self.geometric_losses(pred, x0, frames & low_noise[:, None])
            loss = loss + self.cfg["gen.w_vel"] * vel + self.cfg["gen.w_foot"] * foot
        return loss

    def geometric_losses(self, pred: torch.Tensor, x0: torch.Tensor, frames: torch.Tensor):
        """(velocity, foot contact) losses in (m/s)^2 on joints recovered from normalised features: the mean squared
        error of every joint's velocity, and the mean squared speed of the ankles and toes over the frame pairs in
        which the real clip flags them as contacts. Rows where `frames` is False (padding, or items left out) count
        in neither."""
        if self._norm is None:
            raise RuntimeError("geometric losses need the features' mean and std (set by fit)")
        mean, std = self._norm
        sk = skeleton_for_dim(self.motion_dim)
        raw_pred, raw_true = pred * std + mean, x0 * std + mean
        v_pred = torch.diff(features_to_joints(raw_pred, sk), dim=1) * sk.fps  # (B, T-1, J, 3)
        v_true = torch.diff(features_to_joints(raw_true, sk), dim=1) * sk.fps
        pairs = (frames[:, 1:] & frames[:, :-1]).to(pred.dtype)  # (B, T-1)
        vel = (((v_pred - v_true) ** 2).sum(-1).mean(-1) * pairs).sum() / pairs.sum().clamp(min=1)
        feet = [*sk.feet_left, *sk.feet_right]  # the order of the four contact channels
        contact = raw_true[..., sk.feature_slices()["contacts"]] > 0.5  # (B, T, 4)
        both = contact[:, :-1].to(pred.dtype) * pairs[..., None]  # frame t's flag is about t -> t+1
        speed2 = (v_pred[:, :, feet] ** 2).sum(-1)  # (B, T-1, 4)
        foot = (speed2 * both).sum() / both.sum().clamp(min=1)
        return vel, foot

    def denoise(self, x: torch.Tensor, t: torch.Tensor, frames: torch.Tensor, cond: Condition,
                null: Condition | None, scale: float) -> torch.Tensor:
        """Guided x0: uncond + scale (cond - uncond), both in one batch; scale 1 is the conditional prediction."""
        with self._autocast():
            if scale == 1 or null is None:
                return self._sampler(x, t, frames, cond).float()
            out = self._sampler(torch.cat([x, x]), torch.cat([t, t]), torch.cat([frames, frames]),
                                cond.cat(null)).float()
        c, u = out.chunk(2)
        return u + scale * (c - u)

    def _batch(self, data: MotionDataset, idx: np.ndarray, text: TextFeatures):
        items = collate([data[int(i)] for i in idx])
        x0, frames = items["motion"], items["mask"]
        pad = self._padded(x0.shape[1]) - x0.shape[1]
        x0 = torch.nn.functional.pad(x0, (0, 0, 0, pad))
        frames = torch.nn.functional.pad(frames, (0, pad), value=False)
        return x0.to(self.device), frames.to(self.device), text(items["text"]).to(self.device)

    # -- training -------------------------------------------------------------------------------------------------
    def trainer(self, data: MotionDataset, text: TextFeatures, *, checkpoint_dir: str | Path | None = None,
                progress: bool = False) -> Loop:
        """See `Generator.trainer`. The `debug.*` faults count epochs from 1 (= `gen/epoch`)."""
        begin_training(self, data, text)
        self._norm = (torch.as_tensor(np.asarray(data.pack.mean), dtype=torch.float32, device=self.device),
                      torch.as_tensor(np.asarray(data.pack.std), dtype=torch.float32, device=self.device))
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.cfg["gen.lr"], weight_decay=0.0)
        return generator_loop(self, _Training(self, data, text, opt), opt, checkpoint_dir, progress)

    def learning_rate(self, progress: float) -> float:
        return learning_rate(self.cfg, progress)

    @torch.no_grad()
    def _update_ema(self, done: int) -> None:
        """Average after optimizer step `done` + 1; the decay warms up as (1 + n) / (10 + n) so that the average is
        not held back by the random initial weights in a short run."""
        if self.ema is None:
            return
        d = min(self.cfg["gen.ema"], (1.0 + done) / (10.0 + done))
        for e, p in zip(self.ema.parameters(), self.net.parameters()):
            e.lerp_(p, 1.0 - d)
        for e, b in zip(self.ema.buffers(), self.net.buffers()):
            e.copy_(b)

    # -- sampling -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, texts: Sequence[str], lengths: int | Sequence[int], n: int = 1, seed: int = 0,
               text: TextFeatures | None = None, steps: int | None = None, *, guidance: float | None = None,
               batch_size: int = 64) -> list[list[np.ndarray]]:
        """See `Generator.sample`. Sample (i, k) starts from noise seeded by (seed, i, k); `guidance` defaults to
        `gen.guidance`, `steps` to `eval.sampler_steps`."""
        texts, lengths, feats = sample_request(self, texts, lengths, text)
        scale = self.cfg["gen.guidance"] if guidance is None else float(guidance)
        timesteps = self.schedule.ddim_timesteps(self.cfg["eval.sampler_steps"] if steps is None else steps)
        order = sorted(((i, k) for i in range(len(texts)) for k in range(n)), key=lambda ik: -lengths[ik[0]])
        out: list[list[Any]] = [[None] * n for _ in texts]
        net = self.sampling_net
        was_training = net.training
        net.eval()
        try:
            for s in range(0, len(order), batch_size):
                part = order[s : s + batch_size]
                lens = [lengths[i] for i, _ in part]
                x, frames = self._noise(part, lens, seed)
                x0 = self._ddim(x, frames, feats([texts[i] for i, _ in part]).to(self.device), timesteps, scale)
                for (i, k), m, row in zip(part, lens, x0.cpu().numpy()):
                    out[i][k] = np.ascontiguousarray(row[:m], dtype=np.float32)
        finally:
            net.train(was_training)
        return out

    def _noise(self, part, lens, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.zeros(len(part), self._padded(max(lens)), self.motion_dim)
        for row, ((i, k), m) in enumerate(zip(part, lens)):
            g = torch.Generator().manual_seed(derive_seed(seed, f"sample:{i}:{k}"))
            x[row, :m] = torch.randn(m, self.motion_dim, generator=g)
        frames = torch.arange(x.shape[1])[None] < torch.tensor(lens)[:, None]
        return x.to(self.device), frames.to(self.device)

    def _ddim(self, x, frames, text: TextBatch, timesteps: list[int], scale: float) -> torch.Tensor:
        net = self.sampling_net
        cond = net.condition(text)
        null = None if scale == 1 else net.condition(text, torch.ones(len(text), dtype=torch.bool, device=self.device))
        keep = frames[..., None].to(x.dtype)
        for j, t in enumerate(timesteps):
            t_prev = timesteps[j + 1] if j + 1 < len(timesteps) else -1
            x0 = self.denoise(x, torch.full((x.shape[0],), t, device=self.device), frames, cond, null, scale)
            x = self.schedule.ddim_step(x, x0, t, t_prev) * keep
        return x

    # -- storage --------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """`model` holds the weights sampling uses (the moving average when `gen.ema` > 0, then `trained` holds the
        optimised ones that a resumed run continues from)."""
        def cpu(net):
            return {k: v.detach().cpu() for k, v in net.state_dict().items()}

        out = {"config": dict(self.cfg), "motion_dim": self.motion_dim, "text_dims": list(self.text_dims),
               "model": cpu(self.sampling_net)}
        if self.ema is not None:
            out["trained"] = cpu(self.net)
        return out

    @classmethod
    def from_state(cls, state: Mapping[str, Any], text: TextFeatures | None) -> DiffusionGenerator:
        gen = cls(state["config"], state["motion_dim"], tuple(state["text_dims"]))
        gen.net.load_state_dict(state.get("trained", state["model"]))
        if gen.ema is not None:
            gen.ema.load_state_dict(state["model"])
        check_text_dims(text, gen.text_dims)
        gen.text = text
        gen.history = list(state.get("history", []))
        return gen


class _Training(Task):
    """One diffusion training run for `mate.loop`: batches of (clip, caption) items, the x0 loss, the learning-rate
    curve and the moving average."""

    def __init__(self, gen: DiffusionGenerator, data: MotionDataset, text: TextFeatures, opt: torch.optim.Optimizer):
        self.gen, self.data, self.text, self.opt = gen, data, text, opt
        c = gen.cfg
        self.per_epoch = c["gen.steps"] or math.ceil(len(data) / c["gen.batch"])
        self.total = max(c["gen.epochs"] * self.per_epoch, 1)

    def begin_epoch(self, epoch: int) -> None:
        self.data.set_epoch(epoch)
        self.gen.net.train()

    def batches(self, epoch: int):
        c = self.gen.cfg
        rng = np.random.default_rng([self.gen.seed, epoch])
        for idx in epoch_batches(len(self.data), c["gen.batch"], c["gen.steps"], rng):
            yield self.gen._batch(self.data, idx, self.text)

    def loss(self, batch):
        return self.gen.training_loss(*batch)

    def before_step(self, step: int) -> None:
        lr = self.gen.learning_rate(step / self.total)
        for group in self.opt.param_groups:
            group["lr"] = lr

    def after_step(self, step: int) -> None:
        self.gen._update_ema(step)

    def state(self) -> dict:
        return {"format": FORMAT, "kind": self.gen.kind, **self.gen.state()}

    def load_state(self, state) -> None:
        self.gen.net.load_state_dict(state.get("trained", state["model"]))
        if self.gen.ema is not None:
            self.gen.ema.load_state_dict(state["model"])
