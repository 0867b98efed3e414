"""MoMask-style text-to-motion (Guo et al. 2024): a masked transformer over the tokenizer's base codes and a residual
transformer for the upper codebooks, decoded by the shared motion tokenizer.

Training: each item's tokens come from its clip's codes (every training clip is encoded once, whole, when training
starts: the tokenizer is frozen, so a crop's tokens are the clip's tokens at those positions, and no epoch pays for
the encoder); an epoch's batches are regrouped by length (`base.by_length`), so little of a step goes to
padding. The base model sees a share cos(u pi / 2), u ~ U(0, 1), of the valid tokens hidden (80% [MASK], 10% a
random code, 10% unchanged) and learns to predict them; the residual model learns layer j from the summed code vectors
of layers < j, j uniform. The text is dropped at `gen.cond_drop` for classifier-free guidance.
Sampling: `gen.iterations` rounds of re-masking: every hidden token is predicted (guided logits `gen.guidance`,
`gen.top_k`, `gen.temperature`), and the least confident of them are hidden again on the cosine schedule; then
the residual layers in order; then the tokenizer decodes. A length that is not a multiple of 4 is rounded up and the
decoded motion cropped. Sample (i, k) draws its noise from its own generator seeded by (seed, i, k) and shares a
batch only with motions of the same length, so it does not depend on the other texts asked for with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from mate.config import KEYS, ConfigError, derive_seed
from mate.errors import UserError
from mate.loop import Loop, Task

from .base import (FORMAT, Generator, autocast, begin_training, by_length, check_text_dims, default_device,
                   epoch_batches, generator_loop, learning_rate, sample_request, stage_seed)
from .masked_model import MaskedTransformer, ResidualTransformer
from .text import TextBatch, TextFeatures
from .tokenizer import DOWNSAMPLE, Tokenizer
from .tokenizer.train import encode_clip

CONFIG_KEYS = ("gen.kind", "gen.cond", "gen.layers", "gen.res_layers", "gen.hidden", "gen.heads", "gen.dropout",
               "gen.cond_drop", "gen.guidance", "gen.iterations", "gen.temperature", "gen.top_k", "gen.lr",
               "gen.lr_schedule", "gen.batch", "gen.epochs", "gen.steps", "gen.max_seconds", "gen.seed",
               "gen.foot_lock", "gen.smooth", "debug.nan_epoch", "debug.fail_epoch", "debug.hold_file")


class MaskedGenerator(Generator):
    kind = "masked"

    def __init__(self, cfg: Mapping[str, Any], motion_dim: int, text_dims: tuple[int, int], *,
                 tokenizer: Tokenizer | None = None, device: str | torch.device | None = None):
        values = dict(cfg)
        self.cfg = {k: values.get(k, KEYS[k].default) for k in CONFIG_KEYS}
        self.cfg["gen.seed"] = self.seed = stage_seed(values)
        c = self.cfg
        if tokenizer is None:
            raise ConfigError("gen.kind=masked needs the motion tokenizer (mate.generate.tokenizer.train_or_load)")
        if c["gen.hidden"] % c["gen.heads"] or c["gen.hidden"] % 2:
            raise ConfigError(f"gen.hidden ({c['gen.hidden']}) must be even and a multiple of gen.heads "
                              f"({c['gen.heads']})")
        if not 0 <= c["gen.cond_drop"] < 1:
            raise ConfigError(f"gen.cond_drop must be in [0, 1), got {c['gen.cond_drop']}")
        if tokenizer.model.config["motion_dim"] != motion_dim:
            raise UserError(f"the tokenizer {tokenizer.path} reads {tokenizer.model.config['motion_dim']}-dim motion, "
                            f"not {motion_dim}")
        self.motion_dim, self.text_dims = int(motion_dim), (int(text_dims[0]), int(text_dims[1]))
        self.device = torch.device(device) if device is not None else default_device()
        self.tokenizer = tokenizer.to(self.device)
        self.tokenizer.model.eval().requires_grad_(False)
        shape = dict(cond=c["gen.cond"], hidden=c["gen.hidden"], heads=c["gen.heads"], dropout=c["gen.dropout"])
        with torch.random.fork_rng(devices=[]):  # the same weights for the same seed; the caller's RNG untouched
            torch.manual_seed(self.seed)
            self.base = MaskedTransformer(tokenizer.codes, *self.text_dims, layers=c["gen.layers"], **shape)
            self.res = None
            if tokenizer.layers > 1 and c["gen.res_layers"] > 0:
                self.res = ResidualTransformer(tokenizer.codes, tokenizer.model.config["code_dim"], tokenizer.layers,
                                               *self.text_dims, layers=c["gen.res_layers"], **shape)
        self.nets = torch.nn.ModuleDict({"base": self.base, **({"res": self.res} if self.res is not None else {})})
        self.nets.to(self.device)
        self.text: TextFeatures | None = None
        self.history: list[dict] = []

    # -- training -------------------------------------------------------------------------------------------------
    def trainer(self, data, text: TextFeatures, *, checkpoint_dir: str | Path | None = None,
                progress: bool = False) -> Loop:
        """See `Generator.trainer`. The `debug.*` faults count epochs from 1 (= `gen/epoch`)."""
        begin_training(self, data, text)
        opt = torch.optim.AdamW(self.nets.parameters(), lr=self.cfg["gen.lr"], betas=(0.9, 0.99), weight_decay=1e-5)
        return generator_loop(self, _Training(self, data, text, opt), opt, checkpoint_dir, progress)

    def training_loss(self, codes: torch.Tensor, valid: torch.Tensor, text: TextBatch):
        """(base CE on the hidden tokens + residual CE on every valid token, terms); global RNG."""
        c, base = self.cfg, codes[..., 0]
        b, n = base.shape
        counts = valid.sum(1)
        hide = (torch.cos(torch.rand(b, device=self.device) * math.pi / 2) * counts).round().clamp(min=1)
        order = torch.rand(b, n, device=self.device).masked_fill(~valid, 2.0)  # padding is never hidden
        hidden = (order.argsort(dim=1, stable=True).argsort(dim=1) < hide[:, None]) & valid
        r = torch.rand(b, n, device=self.device)
        random_codes = torch.randint(0, self.base.codes, (b, n), device=self.device)
        ids = torch.where(hidden & (r < 0.8), self.base.mask_id, torch.where(hidden & (r < 0.9), random_codes, base))
        drop = torch.rand(b, device=self.device) < c["gen.cond_drop"]
        with autocast(self.device):
            logits = self.base(ids, valid, self.base.condition(text, drop)).float()
        loss_base = F.cross_entropy(logits[hidden], base[hidden])
        terms = {"base": loss_base, "base_acc": (logits[hidden].argmax(-1) == base[hidden]).float().mean()}
        if self.res is None:
            return loss_base, terms
        j = torch.randint(1, codes.shape[-1], (b,), device=self.device)
        below = torch.arange(codes.shape[-1], device=self.device)[None, None] < j[:, None, None]
        latent = self.tokenizer.model.quantizer.lookup(torch.where(below, codes, -1))
        with autocast(self.device):
            logits_r = self.res(latent, j, valid, self.res.condition(text, drop)).float()
        target = codes.gather(-1, j[:, None, None].expand(b, n, 1))[..., 0]
        loss_res = F.cross_entropy(logits_r[valid], target[valid])
        terms.update(res=loss_res, res_acc=(logits_r[valid].argmax(-1) == target[valid]).float().mean())
        return loss_base + loss_res, terms

    # -- sampling -------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, texts: Sequence[str], lengths: int | Sequence[int], n: int = 1, seed: int = 0,
               text: TextFeatures | None = None, steps: int | None = None, *, guidance: float | None = None,
               batch_size: int = 64) -> list[list[np.ndarray]]:
        """See `Generator.sample`; `steps` is the number of re-masking rounds (default `gen.iterations`)."""
        texts, lengths, feats = sample_request(self, texts, lengths, text)
        scale = self.cfg["gen.guidance"] if guidance is None else float(guidance)
        rounds = self.cfg["gen.iterations"] if steps is None else int(steps)
        if rounds < 1:
            raise ValueError(f"at least one re-masking round is needed, got {rounds}")
        tokens = [math.ceil(v / DOWNSAMPLE) for v in lengths]
        order = sorted(((i, k) for i in range(len(texts)) for k in range(n)), key=lambda ik: (-tokens[ik[0]], ik))
        out: list[list[Any]] = [[None] * n for _ in texts]
        was = self.nets.training
        self.nets.eval()
        try:
            s = 0
            while s < len(order):  # batches of one token length: no padding, so no sample depends on another
                e = s + 1
                while e < len(order) and e - s < batch_size and tokens[order[e][0]] == tokens[order[s][0]]:
                    e += 1
                part = order[s:e]
                gens = [torch.Generator().manual_seed(derive_seed(seed, f"sample:{i}:{k}")) for i, k in part]
                tb = feats([texts[i] for i, _ in part]).to(self.device)
                codes = self._codes(tb, tokens[part[0][0]], gens, scale, rounds)
                motion = self.tokenizer.model.decode(codes).float().cpu().numpy()
                for (i, k), row in zip(part, motion):
                    out[i][k] = np.ascontiguousarray(row[: lengths[i]], dtype=np.float32)
                s = e
        finally:
            self.nets.train(was)
        return out

    def _guided(self, net, inputs: tuple, text: TextBatch, scale: float) -> torch.Tensor:
        """uncond + scale (cond - uncond) logits, both passes in one batch; scale 1 is the conditional model."""
        b = len(text)
        cond = net.condition(text)
        with autocast(self.device):
            if scale == 1:
                return net(*inputs, cond).float()
            null = net.condition(text, torch.ones(b, dtype=torch.bool, device=self.device))
            both = net(*(torch.cat([x, x]) for x in inputs), cond.cat(null)).float()
        c, u = both.chunk(2)
        return u + scale * (c - u)

    def _pick(self, logits: torch.Tensor, gens: list[torch.Generator]) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes drawn from top-k, temperature-scaled logits with each row's own noise, and their probability."""
        k, temp = self.cfg["gen.top_k"], self.cfg["gen.temperature"]
        scores = logits
        if 0 < k < logits.shape[-1]:
            kth = logits.topk(k, dim=-1).values[..., -1:]
            scores = logits.masked_fill(logits < kth, float("-inf"))
        if temp > 0:
            u = torch.stack([torch.rand(logits.shape[1:], generator=g) for g in gens]).to(logits.device)
            scores = scores / temp - torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))
        pred = scores.argmax(-1)
        return pred, logits.softmax(-1).gather(-1, pred[..., None])[..., 0]

    def _codes(self, tb: TextBatch, n_tok: int, gens, scale: float, rounds: int) -> torch.Tensor:
        b = len(tb)
        valid = torch.ones(b, n_tok, dtype=torch.bool, device=self.device)
        ids = torch.full((b, n_tok), self.base.mask_id, dtype=torch.long, device=self.device)
        confidence = torch.zeros(b, n_tok, device=self.device)
        for r in range(rounds):
            hide = max(1, round(math.cos(math.pi / 2 * r / rounds) * n_tok))
            hidden = confidence.argsort(dim=1, stable=True).argsort(dim=1) < hide
            ids = torch.where(hidden, self.base.mask_id, ids)
            pred, prob = self._pick(self._guided(self.base, (ids, valid), tb, scale), gens)
            ids = torch.where(hidden, pred, ids)
            confidence = torch.where(hidden, prob, torch.full_like(prob, 1e5))
        layers = [ids]
        for j in range(1, self.tokenizer.layers if self.res is not None else 1):
            latent = self.tokenizer.model.quantizer.lookup(torch.stack(layers, -1))
            step = torch.full((b,), j, dtype=torch.long, device=self.device)
            layers.append(self._pick(self._guided(self.res, (latent, step, valid), tb, scale), gens)[0])
        return torch.stack(layers, -1)

    # -- storage --------------------------------------------------------------------------------------------------
    def state(self, with_tokenizer: bool = True) -> dict[str, Any]:
        """Weights and config; with the tokenizer's weights too (a saved run samples anywhere), or only its sha and
        folder (the per-epoch checkpoint: the tokenizer is in the workspace cache)."""
        tok = {"sha": self.tokenizer.sha, "path": str(self.tokenizer.path), "meta": self.tokenizer.meta}
        if with_tokenizer:
            tok["weights"] = {k: v.detach().cpu() for k, v in self.tokenizer.model.state_dict().items()}
        return {"config": dict(self.cfg), "motion_dim": self.motion_dim, "text_dims": list(self.text_dims),
                "model": {k: v.detach().cpu() for k, v in self.nets.state_dict().items()}, "tokenizer": tok}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], text: TextFeatures | None) -> MaskedGenerator:
        from .tokenizer.train import from_weights, load

        tok = state["tokenizer"]
        tokenizer = (from_weights(tok["weights"], tok["meta"], tok["sha"]) if "weights" in tok
                     else load(tok["path"], sha=tok["sha"]))
        gen = cls(state["config"], state["motion_dim"], tuple(state["text_dims"]), tokenizer=tokenizer)
        gen.nets.load_state_dict(state["model"])
        check_text_dims(text, gen.text_dims)
        gen.text = text
        gen.history = list(state.get("history", []))
        return gen


class _Training(Task):
    """One masked-generator training run for `mate.loop`: batches of (clip, caption) items as token crops."""

    def __init__(self, gen: MaskedGenerator, data, text: TextFeatures, opt: torch.optim.Optimizer):
        self.gen, self.data, self.text, self.opt = gen, data, text, opt
        c = gen.cfg
        self.per_epoch = c["gen.steps"] or math.ceil(len(data) / c["gen.batch"])
        self.total = max(c["gen.epochs"] * self.per_epoch, 1)
        self.clip_codes = self._encode_clips()

    def _encode_clips(self) -> dict[int, torch.Tensor]:
        """Every training clip's codes (tokens, layers), each clip encoded alone and whole."""
        pack = self.data.pack
        return {int(c): encode_clip(self.gen.tokenizer, pack.normalize(pack.motion(int(c))))
                for c in np.unique(self.data.clip)}

    def begin_epoch(self, epoch: int) -> None:
        self.data.set_epoch(epoch)
        self.gen.nets.train()

    def _span(self, index: int) -> tuple[int, int]:
        """The item's crop [a, b) rows as [start, stop) tokens, starting at the next whole token of the clip's grid."""
        a, b = self.data.crop(index)
        n = len(self.clip_codes[int(self.data.clip[index])])
        start = min(-(-a // DOWNSAMPLE), n - 1)
        return start, start + max(1, min((b - a) // DOWNSAMPLE, n - start))

    def _tokens(self, index: int) -> int:
        start, stop = self._span(index)
        return stop - start

    def _item(self, index: int) -> tuple[torch.Tensor, str]:
        start, stop = self._span(index)
        codes = self.clip_codes[int(self.data.clip[index])][start:stop]
        return codes, self.data.pack.caption(int(self.data.cap[index])).text

    def batches(self, epoch: int):
        c = self.gen.cfg
        rng = np.random.default_rng([self.gen.seed, epoch])
        drawn = epoch_batches(len(self.data), c["gen.batch"], c["gen.steps"], rng)
        for idx in by_length(drawn, self._tokens, rng):
            items = [self._item(int(i)) for i in idx]
            n = max(len(codes) for codes, _ in items)
            codes = torch.zeros(len(items), n, items[0][0].shape[1], dtype=torch.long, device=self.gen.device)
            valid = torch.zeros(len(items), n, dtype=torch.bool, device=self.gen.device)
            for row, (item, _) in enumerate(items):
                codes[row, : len(item)] = item
                valid[row, : len(item)] = True
            yield codes, valid, self.text([t for _, t in items]).to(self.gen.device)

    def loss(self, batch):
        return self.gen.training_loss(*batch)

    def end_epoch(self, epoch: int, metrics: dict) -> None:
        for part in ("base", "res"):  # token accuracies are not losses: gen/acc_base, gen/acc_res
            if f"gen/loss_{part}_acc" in metrics:
                metrics[f"gen/acc_{part}"] = metrics.pop(f"gen/loss_{part}_acc")

    def before_step(self, step: int) -> None:
        lr = learning_rate(self.gen.cfg, step / self.total)
        for group in self.opt.param_groups:
            group["lr"] = lr

    def state(self) -> dict:
        return {"format": FORMAT, "kind": self.gen.kind, **self.gen.state(with_tokenizer=False)}

    def load_state(self, state) -> None:
        self.gen.nets.load_state_dict(state["model"])
