"""Training, storing and loading the motion tokenizer, once per (dataset, normalisation, `gen.vq_*` keys).

It reads motion only, never text, so every trial of a dataset shares one (as the scoring evaluator is shared): it is
trained by the sweep's prepare stage or on first use, cached in the workspace, and identified by the sha256 of its
weights, which a trial records (`tokenizer.sha`) and may pin. A cached folder that cannot be trusted (unreadable or
truncated weights, a sha that no longer matches, another dataset's or normalisation's tokenizer) is reported in one
line naming the file and rebuilt, never used.

Loss (normalised feature space): a smooth-L1 reconstruction with the root (rotation velocity, linear velocity,
height) and foot-contact channels weighted by `gen.vq_w_key`, plus `gen.vq_w_joints` x the error in metres of the
global joint positions recovered from the features, `gen.vq_w_vel` x the error of their velocities in m/s and
`gen.vq_w_foot` x the speed of the reconstructed feet wherever either clip has them on the ground (what ties the root's
travel to the legs: foot skating is an error there, not in any one channel), plus `gen.vq_commit` x the commitment
loss.

With `gen.vq_noise` > 0 a second stage follows (`_NoisyCodes`): the decoder alone is fine-tuned, for
`gen.vq_noise_steps`, on the frozen encoder's codes with part of the base layer replaced by random codes, the clean
clip still the target. A generator's sampled tokens hold transitions no real clip has, and a decoder that only ever
saw real code sequences turns them into sliding feet (BENCHMARKS.md, issue 23). The encoder and codebooks stay as
they were, so the codes, and any generator trained on them, are the same as the first stage's; that stage is its
own cache entry, shared by every noise setting.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from mate.cache import content_hash, file_sha256, get_or_build, lock_for, note
from mate.data.features import features_to_joints, ground_weight, mirror_features
from mate.data.skeleton import skeleton_for_dim
from mate.errors import UserError
from mate.loop import Loop, Plan, Task, resolve_device

from .model import DOWNSAMPLE, MotionTokenizer

WEIGHTS = "model.safetensors"
META = "meta.json"
FORMAT = 1
LOSS = 2  # the loss terms' definitions (in the cache key): 2 = gen.vq_w_foot weighs foot_slide, not contact frames
CHECKPOINT = "tokenizer.pt"
NOISE_LR = 0.2  # the decoder's fine-tuning runs at this share of gen.vq_lr: it adjusts a trained decoder
# the keys that shape or train the tokenizer (its cache key); gen.vq_max_seconds only caps the wall time
MODEL_KEYS = ("gen.vq_layers", "gen.vq_codes", "gen.vq_dim", "gen.vq_width", "gen.vq_depth", "gen.vq_decay",
              "gen.vq_drop")
TRAIN_KEYS = ("gen.vq_commit", "gen.vq_w_joints", "gen.vq_w_vel", "gen.vq_w_foot", "gen.vq_w_key", "gen.vq_mirror",
              "gen.vq_window", "gen.vq_batch", "gen.vq_lr", "gen.vq_epochs", "gen.vq_steps", "gen.vq_seed")
NOISE_KEYS = ("gen.vq_noise", "gen.vq_noise_steps")  # the second stage's (in the key only when it runs)


class TokenizerMismatch(UserError):
    """A tokenizer folder that is not the one this dataset and config give (or not a tokenizer at all)."""


@dataclass
class Tokenizer:
    model: MotionTokenizer
    sha: str
    path: Path
    meta: dict

    @property
    def layers(self) -> int:
        return self.model.layers

    @property
    def codes(self) -> int:
        return self.model.codes

    def to(self, device) -> Tokenizer:
        self.model.to(device)
        return self


def build_model(cfg: Mapping[str, Any], motion_dim: int) -> MotionTokenizer:
    return MotionTokenizer(motion_dim, width=cfg["gen.vq_width"], code_dim=cfg["gen.vq_dim"],
                           depth=cfg["gen.vq_depth"], layers=cfg["gen.vq_layers"], codes=cfg["gen.vq_codes"],
                           decay=cfg["gen.vq_decay"], drop=cfg["gen.vq_drop"])


def key_channels(dim: int) -> torch.Tensor:
    """Per-channel weight mask: 1 for the root (first 4) and foot-contact (last 4) channels, else 0."""
    sk = skeleton_for_dim(dim)
    mask = torch.zeros(dim)
    mask[:4] = 1.0
    mask[sk.feature_slices()["contacts"]] = 1.0
    return mask


def _toes_near_floor(j: torch.Tensor, sk) -> torch.Tensor:
    """(B, T-1, 2): how much each toe is on the clip's own floor over a frame step, as `probe/foot_skate` weighs it
    (the floor: the 2nd percentile of the lowest foot joint)."""
    feet = [*sk.feet_left, *sk.feet_right]
    floor = torch.quantile(j[:, :, feet, 1].amin(-1), 0.02, dim=1)[:, None, None]
    h = j[:, :, [sk.feet_left[1], sk.feet_right[1]], 1] - floor
    return ground_weight(0.5 * (h[:, 1:] + h[:, :-1]))


def foot_slide(got: torch.Tensor, want: torch.Tensor, sk) -> torch.Tensor:
    """Horizontal speed (m/s) of the reconstructed toes wherever either clip has them on its floor, per toe-frame:
    `probe/foot_skate` made a loss. Both clips' contacts are needed: with the real clip's alone (MDM's foot-contact
    loss) a decoder stops planted feet by flattening the swing, so low, moving toes slide instead (BENCHMARKS.md,
    issue 23); each clip is measured from its own floor, or lifting the whole body would escape the term. The
    feature's contact flags are no help here: they mark any foot slower than 0.9 m/s."""
    toes = [sk.feet_left[1], sk.feet_right[1]]
    speed = torch.diff(got[:, :, toes][..., [0, 2]], dim=1).norm(dim=-1) * sk.fps  # (B, T-1, 2)
    weight = torch.maximum(_toes_near_floor(want, sk).detach(), _toes_near_floor(got, sk))
    return (speed * weight).mean()  # over all toe-frames: lifting a low, moving toe must pay


class _Reconstruction(Task):
    """Random windows of the training clips through the tokenizer, for `mate.loop`."""

    def __init__(self, model: MotionTokenizer, pack, cfg: Mapping[str, Any], opt, device: torch.device):
        self.model, self.pack, self.cfg, self.opt, self.device = model, pack, cfg, opt, device
        self.window = cfg["gen.vq_window"]
        clips = pack.split_indices("train")
        self.clips = clips[pack.lengths[clips] >= self.window]
        if len(self.clips) == 0:
            raise UserError(f"no training clip is as long as gen.vq_window={self.window} rows; lower it")
        self.per_epoch = cfg["gen.vq_steps"] or math.ceil(len(self.clips) / cfg["gen.vq_batch"])
        self.total = max(1, cfg["gen.vq_epochs"] * self.per_epoch)
        self.mean = torch.as_tensor(np.asarray(pack.mean), dtype=torch.float32, device=device)
        self.std = torch.as_tensor(np.asarray(pack.std), dtype=torch.float32, device=device)
        self.weight = 1.0 + (cfg["gen.vq_w_key"] - 1.0) * key_channels(pack.dim).to(device)

    def begin_epoch(self, epoch: int) -> None:
        self.model.train()

    def batches(self, epoch: int):
        from mate.generate.base import epoch_batches

        rng = np.random.default_rng([self.cfg["gen.vq_seed"], epoch])
        flips = np.random.default_rng([self.cfg["gen.vq_seed"], epoch, 1])  # apart: the same windows either way
        for idx in epoch_batches(len(self.clips), self.cfg["gen.vq_batch"], self.cfg["gen.vq_steps"], rng):
            rows = []
            for i in idx:
                clip = int(self.clips[i])
                start = int(rng.integers(0, int(self.pack.lengths[clip]) - self.window + 1))
                window = self.pack.motion(clip, start, start + self.window)
                if self.cfg["gen.vq_mirror"] and flips.random() < 0.5:
                    window = mirror_features(window)
                rows.append(self.pack.normalize(window))
            yield torch.from_numpy(np.stack(rows)).to(self.device)

    def forward(self, x):
        """(reconstruction, codes, commitment loss) of a normalised batch."""
        return self.model(x)

    def loss(self, x):
        recon, _, commit = self.forward(x)
        rec = (F.smooth_l1_loss(recon, x, reduction="none") * self.weight).mean()
        terms = {"rec": rec, "commit": commit}
        total = rec + self.cfg["gen.vq_commit"] * commit
        c = self.cfg
        if c["gen.vq_w_joints"] or c["gen.vq_w_vel"] or c["gen.vq_w_foot"]:
            sk = skeleton_for_dim(x.shape[-1])
            raw = x * self.std + self.mean
            got, want = features_to_joints(recon * self.std + self.mean), features_to_joints(raw)
            terms["joints"] = (got - want).norm(dim=-1).mean()
            speed = torch.diff(got, dim=1) * sk.fps  # (B, T-1, J, 3) m/s
            terms["vel"] = (speed - torch.diff(want, dim=1) * sk.fps).norm(dim=-1).mean()
            terms["foot"] = foot_slide(got, want, sk)
            total = (total + c["gen.vq_w_joints"] * terms["joints"] + c["gen.vq_w_vel"] * terms["vel"]
                     + c["gen.vq_w_foot"] * terms["foot"])
        return total, terms

    def before_step(self, step: int) -> None:
        """Linear warm-up over the first 5% of the steps, then cosine decay to a tenth: a function of the step, so a
        resumed run follows the same curve."""
        warm = max(1, self.total // 20)
        p = min(step / self.total, 1.0)
        scale = (step + 1) / warm if step < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * p))
        for g in self.opt.param_groups:
            g["lr"] = self.cfg["gen.vq_lr"] * scale

    def end_epoch(self, epoch: int, metrics: dict) -> None:
        for i, book in enumerate(self.model.quantizer.books):
            metrics[f"tokenizer/live_codes_{i}"] = float((book.usage >= book.dead_below).float().mean())
            metrics[f"tokenizer/resets_{i}"] = float(book.resets)

    def state(self) -> dict:
        return {"model": self.model.state_dict()}

    def load_state(self, state) -> None:
        self.model.load_state_dict(state["model"])


class _NoisyCodes(_Reconstruction):
    """The second stage (module docstring): each window gets a share u x `gen.vq_noise` (u uniform per window) of its
    base-layer codes replaced by random ones; only the decoder learns, so the codes stay the first stage's."""

    def __init__(self, model: MotionTokenizer, pack, cfg: Mapping[str, Any], opt, device: torch.device):
        stage = {**cfg, "gen.vq_steps": cfg["gen.vq_noise_steps"], "gen.vq_epochs": 1,
                 "gen.vq_lr": NOISE_LR * cfg["gen.vq_lr"]}
        super().__init__(model, pack, stage, opt, device)
        self.model.requires_grad_(False)
        self.model.decoder.requires_grad_(True)

    def begin_epoch(self, epoch: int) -> None:
        self.model.eval()  # the codebooks' moving averages and quantizer dropout stay off
        self.model.decoder.train()

    def forward(self, x):
        codes = self.model.encode(x)
        b, n, _ = codes.shape
        share = torch.rand(b, 1, device=x.device) * self.cfg["gen.vq_noise"]
        noisy = torch.where(torch.rand(b, n, device=x.device) < share,
                            torch.randint(0, self.model.codes, (b, n), device=x.device), codes[..., 0])
        codes = torch.cat([noisy[..., None], codes[..., 1:]], dim=-1)
        return self.model.decoder(self.model.quantizer.lookup(codes)), codes, torch.zeros((), device=x.device)

    def end_epoch(self, epoch: int, metrics: dict) -> None:
        pass  # the codebooks are frozen: no live-code figures to add

    def state(self) -> dict:
        return {"decoder": self.model.decoder.state_dict()}

    def load_state(self, state) -> None:
        self.model.decoder.load_state_dict(state["decoder"])


def _noisy(cfg: Mapping[str, Any]) -> bool:
    return cfg["gen.vq_noise"] > 0 and cfg["gen.vq_noise_steps"] > 0


def tokenizer_dir(pack, cfg: Mapping[str, Any], workspace: str | Path) -> Path:
    keys = {k: cfg[k] for k in (*MODEL_KEYS, *TRAIN_KEYS, *(NOISE_KEYS if _noisy(cfg) else ()))}
    key = content_hash({"data": pack.content_hash, "norm": pack.norm_hash, "keys": keys, "format": FORMAT,
                        "loss": LOSS})
    return Path(workspace) / "cache" / "tokenizers" / key


def _train(pack, cfg, checkpoint: Path | None, progress: bool, device) -> tuple[MotionTokenizer, dict]:
    device = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["gen.vq_seed"])
        model = build_model(cfg, pack.dim).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["gen.vq_lr"], betas=(0.9, 0.99), weight_decay=0.0)
    plan = Plan("tokenizer", cfg["gen.vq_epochs"], seed=cfg["gen.vq_seed"], max_seconds=cfg["gen.vq_max_seconds"],
                clip_norm=1.0, hint="lower gen.vq_lr")
    loop = Loop(_Reconstruction(model, pack, cfg, opt, device), opt, plan, checkpoint=checkpoint, device=device,
                progress=progress)
    loop.resume(checkpoint)
    history = loop.fit()
    model.eval()
    last = history[-1] if history else {}
    return model.cpu(), {"epochs_done": len(history), "steps_done": loop.step, "train_seconds": loop.seconds,
                         "stopped_early": loop.stopped, "history": history,
                         **{k: v for k, v in last.items() if k.startswith("tokenizer/")}}


def _fine_tune(first: Tokenizer, pack, cfg, checkpoint: Path | None, progress: bool,
               device) -> tuple[MotionTokenizer, dict]:
    """The second stage on a copy of the first stage's tokenizer (module docstring)."""
    device = resolve_device(device)
    model = MotionTokenizer(**first.model.config)
    model.load_state_dict(first.model.state_dict())
    model.to(device)
    opt = torch.optim.AdamW(model.decoder.parameters(), lr=cfg["gen.vq_lr"], betas=(0.9, 0.99), weight_decay=0.0)
    plan = Plan("tokenizer_noise", 1, seed=cfg["gen.vq_seed"], clip_norm=1.0, hint="lower gen.vq_lr",
                title="tokenizer decoder (noisy codes)")
    loop = Loop(_NoisyCodes(model, pack, cfg, opt, device), opt, plan, checkpoint=checkpoint, device=device,
                progress=progress)
    loop.resume(checkpoint)
    history = loop.fit()
    model.eval()
    meta = first.meta
    return model.cpu(), {"epochs_done": meta["epochs_done"], "steps_done": meta["steps_done"] + loop.step,
                         "train_seconds": meta["train_seconds"] + loop.seconds,
                         "stopped_early": meta["stopped_early"] or loop.stopped,
                         "history": meta["history"] + history, "first_stage": {"sha": first.sha,
                                                                                "path": str(first.path)},
                         "noise_seconds": loop.seconds,
                         **{k: v for k, v in meta.items() if k.startswith("tokenizer/")}}


def train_or_load(pack, cfg: Mapping[str, Any], workspace: str | Path, *, progress: bool = True, device=None,
                  log: Callable[[str], None] = print) -> Tokenizer:
    """The tokenizer for this dataset and these keys: loaded from the workspace, or trained once (a killed training
    resumes from a checkpoint beside the cache entry)."""
    from safetensors.torch import save_file

    path = tokenizer_dir(pack, cfg, workspace)
    partial = path.with_name(f".{path.name}.{CHECKPOINT}")
    if path.exists():
        with lock_for(path):
            try:
                if path.exists():
                    note(path)  # what a recording prepare stage ships, as get_or_build would tell it
                    return load(path, pack)
            except TokenizerMismatch as exc:
                log(f"tokenizer: {exc}; rebuilding it")
                shutil.rmtree(path)

    first = None
    if _noisy(cfg):  # the first stage is its own cache entry (trained here when missing)
        first = train_or_load(pack, {**cfg, "gen.vq_noise": 0.0}, workspace, progress=progress, device=device,
                              log=log)

    def build(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        if first is None:
            model, stats = _train(pack, cfg, partial, progress, device)
        else:
            model, stats = _fine_tune(first, pack, cfg, partial, progress, device)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / WEIGHTS))
        keys = (*MODEL_KEYS, *TRAIN_KEYS, "gen.vq_max_seconds", *(NOISE_KEYS if first is not None else ()))
        meta = {"dataset_hash": pack.content_hash, "norm_hash": pack.norm_hash, "model_config": model.config,
                "config": {k: cfg[k] for k in keys}, "format": FORMAT, "sha": file_sha256(tmp / WEIGHTS), **stats}
        (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True))

    get_or_build(path, build, exists=lambda p: (p / META).is_file())
    partial.unlink(missing_ok=True)
    return load(path, pack)


def load(path: str | Path, pack=None, sha: str | None = None) -> Tokenizer:
    """A cached tokenizer, checked against its own recorded sha, the dataset (`pack`) and an expected `sha` (a
    checkpoint names its tokenizer so); any doubt is a TokenizerMismatch whose message names the file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    wanted = f"; the generator was trained with tokenizer {sha[:12]}" if sha else ""
    try:
        meta = json.loads((path / META).read_text())
        recorded = meta["sha"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TokenizerMismatch(f"{path / META}: not a tokenizer's metadata ({type(exc).__name__}: {exc}){wanted}"
                                ) from None
    if pack is not None and (meta.get("dataset_hash") != pack.content_hash or meta.get("norm_hash") != pack.norm_hash):
        raise TokenizerMismatch(f"{path / META}: built for dataset {meta.get('dataset_hash')} with its own Mean/Std, "
                                f"not {pack.content_hash} ({pack.path})")
    weights = path / WEIGHTS
    if not weights.is_file() or file_sha256(weights) != recorded:
        raise TokenizerMismatch(f"{weights}: missing, truncated or changed since training (recorded sha "
                                f"{recorded[:12]})")
    if sha and recorded != sha:
        raise TokenizerMismatch(f"{weights}: not the tokenizer this generator was trained with (sha {sha[:12]})")
    try:
        state = load_file(str(weights))
        model = MotionTokenizer(**meta["model_config"])
        model.load_state_dict(state)
    except (SafetensorError, RuntimeError, TypeError, KeyError) as exc:
        raise TokenizerMismatch(f"{weights}: unreadable ({type(exc).__name__}: {exc})") from None
    model.eval()
    return Tokenizer(model, recorded, path, meta)


def weights_sha(state: Mapping[str, torch.Tensor]) -> str:
    """The sha256 of the safetensors file these weights are saved as (what `Tokenizer.sha` is)."""
    import hashlib

    from safetensors.torch import save

    return hashlib.sha256(save({k: v.contiguous() for k, v in state.items()})).hexdigest()


def from_weights(weights: Mapping[str, torch.Tensor], meta: Mapping[str, Any], sha: str) -> Tokenizer:
    """A tokenizer carried inside a saved generator; its weights must still hash to the recorded sha."""
    if weights_sha(weights) != sha:
        raise TokenizerMismatch(f"the tokenizer inside this generator file does not match its recorded sha "
                                f"{sha[:12]}: the file is damaged")
    model = MotionTokenizer(**meta["model_config"])
    model.load_state_dict(dict(weights))
    return Tokenizer(model.eval(), sha, Path(meta.get("path", "")), dict(meta))


@torch.no_grad()
def encode_clip(tok: Tokenizer, motion: np.ndarray) -> torch.Tensor:
    """One normalised motion, cropped to whole tokens and encoded alone (so no token sees another clip's padding)
    -> its codes (T / 4, layers) on the tokenizer's device."""
    n = len(motion) // DOWNSAMPLE * DOWNSAMPLE
    if n == 0:
        raise ValueError(f"a motion of {len(motion)} rows is shorter than one token ({DOWNSAMPLE} rows)")
    device = next(tok.model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(motion[:n], dtype=np.float32))[None].to(device)
    return tok.model.encode(x)[0]


@torch.no_grad()
def reconstruct(tok: Tokenizer, motions: list[np.ndarray], layers: int | None = None) -> tuple[list[np.ndarray],
                                                                                               list[np.ndarray]]:
    """Normalised motions (T_i rows, cropped to a multiple of 4) -> (reconstructions, codes (T_i / 4, layers)), each
    clip alone (`encode_clip`); `layers` keeps only the first k codebooks."""
    model = tok.model.eval()
    out, codes = [], []
    for m in motions:
        c = encode_clip(tok, m)[:, : layers or model.layers]
        out.append(model.decode(c[None])[0].cpu().numpy())
        codes.append(c.cpu().numpy())
    return out, codes
