"""The one interface every downstream generator implements, so the pipeline trains, samples and stores any of them.

A generator trains on normalised motion (the dataset's Mean/Std space) and samples in that space too: callers
denormalise with `Pack.denormalize` where they need raw features. It reads text only through `TextFeatures` and never
evaluates itself: its `trainer` yields each epoch's metrics once the epoch's checkpoint is written, and the pipeline
computes its val objectives between epochs.
"""

from __future__ import annotations

import abc
import contextlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mate.cache import atomic_write
from mate.config import ConfigError, derive_seed
from mate.data.dataset import MotionDataset
from mate.errors import UserError
from mate.loop import Loop, resolve_device

from .text import TextFeatures

OnEpoch = Callable[[int, dict], None]
FORMAT = 1
CHECKPOINT = "gen.pt"  # a generator's per-epoch checkpoint in the trial's checkpoint folder


class Generator(abc.ABC):
    kind: str = ""

    @abc.abstractmethod
    def trainer(self, data: MotionDataset, text: TextFeatures, *, checkpoint_dir: str | Path | None = None,
                progress: bool = False) -> Loop:
        """The training loop over `gen.epochs` (`mate.loop`), not yet started: `resume(dir)` it, then iterate
        `run()` for each epoch's metrics (`gen/loss`, `gen/epoch` counted from 1, `cost/gen_epoch_seconds`, ...),
        each yielded once `checkpoint_dir/gen.pt` holds that epoch."""

    def fit(self, data: MotionDataset, text: TextFeatures, on_epoch: OnEpoch | None = None, *,
            checkpoint_dir: str | Path | None = None, resume_dir: str | Path | None = None,
            progress: bool = False) -> list[dict]:
        """Train for `gen.epochs` (continuing from `resume_dir`'s checkpoint when it has one, so that a killed and
        resumed run ends where an uninterrupted one does); `on_epoch(epoch, metrics)` after each epoch's checkpoint.
        Returns every epoch's metrics."""
        loop = self.trainer(data, text, checkpoint_dir=checkpoint_dir, progress=progress)
        loop.resume(resume_dir)
        for metrics in loop.run():
            if on_epoch is not None:
                on_epoch(int(metrics["gen/epoch"]), metrics)
        return loop.history

    @abc.abstractmethod
    def sample(self, texts: Sequence[str], lengths: int | Sequence[int], n: int = 1, seed: int = 0,
               text: TextFeatures | None = None, steps: int | None = None) -> list[list[np.ndarray]]:
        """`out[i][k]`: the k-th of `n` samples for `texts[i]`, a float32 (lengths[i], motion_dim) array of
        NORMALISED features. Deterministic given `seed`; sample (i, k) does not depend on the other texts asked for
        with it. `text` defaults to the features the generator was trained or loaded with."""

    @abc.abstractmethod
    def state(self) -> dict[str, Any]:
        """Everything `load` needs besides the text features (weights, config, dimensions)."""

    @classmethod
    @abc.abstractmethod
    def from_state(cls, state: Mapping[str, Any], text: TextFeatures | None) -> Generator: ...

    def save(self, path: str | Path) -> Path:
        """The trained generator (no optimizer state), written to a temporary file and renamed into place."""
        return save_torch({"format": FORMAT, "kind": self.kind, **self.state()}, path)

    @classmethod
    def load(cls, path: str | Path, text: TextFeatures | None = None) -> Generator:
        """A generator from `save` (or a `gen.pt` checkpoint); `text` must give the dimensions it was trained on."""
        state = torch.load(Path(path), map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != FORMAT or "kind" not in state:
            raise UserError(f"{path}: not a generator file of format {FORMAT}")
        impl = generator_class(state["kind"])
        if cls is not Generator and not issubclass(impl, cls):
            raise UserError(f"{path}: holds a {state['kind']} generator, not a {cls.kind} one")
        return impl.from_state(state, text)


def generator_class(kind: str) -> type[Generator]:
    if kind == "diffusion":
        from .diffusion import DiffusionGenerator

        return DiffusionGenerator
    if kind == "masked":
        from .masked import MaskedGenerator

        return MaskedGenerator
    raise ConfigError(f"config key 'gen.kind' must be one of diffusion, masked; got {kind!r}")


def make_generator(cfg: Mapping[str, Any], motion_dim: int, text_dims: tuple[int, int], *,
                   device: str | torch.device | None = None, tokenizer=None) -> Generator:
    """A new, untrained generator of kind `cfg["gen.kind"]`; text_dims = (sentence_dim, token_dim); `tokenizer`
    (`mate.generate.tokenizer.Tokenizer`) is what `gen.kind=masked` predicts the codes of."""
    extra = {"tokenizer": tokenizer} if cfg["gen.kind"] == "masked" else {}
    return generator_class(cfg["gen.kind"])(cfg, motion_dim, text_dims, device=device, **extra)


def begin_training(gen: Generator, data: MotionDataset, text: TextFeatures) -> None:
    """The checks every generator makes before training, and the text it then samples with by default."""
    if data.pack.dim != gen.motion_dim:
        raise UserError(f"the data has {data.pack.dim}-dim motion; this generator was built for {gen.motion_dim}")
    if len(data) == 0:
        raise UserError(f"no training items in split '{data.split}'")
    check_text_dims(text, gen.text_dims)
    gen.text = text


def generator_loop(gen: Generator, task, opt: torch.optim.Optimizer, checkpoint_dir: str | Path | None,
                   progress: bool) -> Loop:
    """`mate.loop` over `gen.epochs` with the generator's budget, checks and test-only faults; `gen.pt` per epoch."""
    from mate.loop import Faults, Plan

    c = gen.cfg
    plan = Plan("gen", c["gen.epochs"], seed=gen.seed, max_seconds=c["gen.max_seconds"], clip_norm=1.0,
                hint="lower gen.lr", title="generator", faults=Faults.from_config(c))
    checkpoint = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    loop = Loop(task, opt, plan, checkpoint=checkpoint, device=gen.device, progress=progress)
    gen.history = loop.history
    return loop


def sample_request(gen: Generator, texts: Sequence[str], lengths: int | Sequence[int],
                   text: TextFeatures | None) -> tuple[list[str], list[int], TextFeatures]:
    """A `sample` call's texts, one length per text (an int applies to all) and the features to read them with."""
    texts = list(texts)
    lengths = [int(lengths)] * len(texts) if isinstance(lengths, (int, np.integer)) else [int(v) for v in lengths]
    if len(lengths) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(lengths)} lengths")
    if any(v < 1 for v in lengths):
        raise ValueError(f"every length must be at least 1 frame, got {min(lengths)}")
    feats = text if text is not None else gen.text
    if feats is None:
        raise UserError("no text features: pass text= (the generator was loaded without them)")
    check_text_dims(feats, gen.text_dims)
    return texts, lengths, feats


def stage_seed(cfg: Mapping[str, Any]) -> int:
    """`gen.seed`, else derived from `seed` (as `Config.seed_for("gen")`, for plain dicts too)."""
    explicit = cfg.get("gen.seed")
    return int(explicit) if explicit is not None else derive_seed(int(cfg.get("seed", 0)), "gen")


def check_text_dims(text: TextFeatures | None, dims: tuple[int, int]) -> None:
    if text is not None and (text.sentence_dim, text.token_dim) != tuple(dims):
        raise UserError(f"the text features give (sentence {text.sentence_dim}, token {text.token_dim}) dims; this "
                        f"generator was built for (sentence {dims[0]}, token {dims[1]}): use the same text encoder")


def epoch_batches(n: int, batch: int, steps: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """An epoch's batches of item indices: `steps` full batches drawn through successive permutations (items repeat
    within a batch only when there are fewer than `batch`), or with steps 0 one pass, the last batch partial."""
    if steps == 0:
        order = rng.permutation(n)
        yield from (order[s : s + batch] for s in range(0, n, batch))
        return
    order = np.zeros(0, np.int64)
    for _ in range(steps):
        while len(order) < batch:
            order = np.concatenate([order, rng.permutation(n)])
        yield order[:batch]
        order = order[batch:]


def by_length(batches: Iterable[np.ndarray], length: Callable[[int], int], rng: np.random.Generator,
              pool: int = 16) -> Iterator[np.ndarray]:
    """The same items in batches of the same sizes, regrouped `pool` batches at a time by `length` and the regrouped
    batches shuffled: a batch pads its items to its longest, and random bench crops fill only 61% of a batch's
    tokens, so a transformer spends two fifths of its step on padding. A function of the batches and `rng` alone, so a
    resumed epoch regroups as the uninterrupted one did."""
    group: list[np.ndarray] = []

    def regroup() -> Iterator[np.ndarray]:
        items = np.concatenate(group)
        items = items[np.argsort([length(int(i)) for i in items], kind="stable")]
        parts = np.split(items, np.cumsum([len(b) for b in group])[:-1])
        yield from (parts[k] for k in rng.permutation(len(parts)))

    for b in batches:
        group.append(b)
        if len(group) == pool:
            yield from regroup()
            group = []
    if group:
        yield from regroup()


def save_torch(obj: Any, path: str | Path) -> Path:
    path = Path(path)
    with atomic_write(path) as f:
        torch.save(obj, f)
    return path


def learning_rate(cfg: Mapping[str, Any], progress: float) -> float:
    """`gen.lr`, or with `gen.lr_schedule=cosine` its cosine decay to 0 at `progress` (share of the planned steps
    done): a function of the step alone, so a resumed run follows the same curve with no scheduler state."""
    if cfg["gen.lr_schedule"] == "constant":
        return cfg["gen.lr"]
    return cfg["gen.lr"] * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def autocast(device: torch.device):
    """bfloat16 autocast on CUDA, nothing elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_device() -> torch.device:
    return resolve_device()
