"""The one training loop every trainer runs (evaluators, aligner, tokenizer, generators).

A trainer says what one step computes (`Task`); the loop owns everything around it, once: the device, per-epoch
re-seeding, the NaN and divergence checks, gradient clipping, the time budget, the progress bar, the checkpoint
after every epoch and the resume from one, and the test-only fault hooks. Reproducibility across kills: each epoch
re-seeds torch from (seed, epoch) and a task draws its batches from the same pair, so a run resumed from the
checkpoint of epoch e repeats exactly what the uninterrupted run did after e; no RNG state is stored.

`Loop.run()` yields each epoch's metrics after its checkpoint is written, so a caller (a trial) can score and report
between epochs as a plain `for` loop, and a caller killed after the checkpoint but before its own work finished
finds the epoch in `Loop.history` on resume.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .cache import atomic_write
from .config import derive_seed

DIVERGED = 1e3  # an epoch's mean loss this many times the first epoch's ends the run


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """The one place a device is chosen: the given one, else CUDA when present (`CUDA_VISIBLE_DEVICES` already
    narrows it to the trial's share), else the CPU."""
    if device is not None and str(device) != "auto":
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def to_device(obj: Any, device: torch.device | str) -> Any:
    """Every tensor in a batch (nested dicts, tokenizer outputs, lists, tuples) on `device`; the rest as it is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if hasattr(obj, "to") and hasattr(obj, "keys") and not isinstance(obj, dict):  # BatchEncoding, TextBatch-likes
        return obj.to(device)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and any(isinstance(v, torch.Tensor) for v in obj):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


@dataclass(frozen=True)
class Faults:
    """Test-only fault injection (the `debug.*` keys). Each fires only in a run that did not resume from a
    checkpoint, so a retry from the last checkpoint succeeds, as after a transient fault."""

    fail_epoch: int | None = None  # raise at the start of this 1-based epoch
    nan_epoch: int | None = None  # make this epoch's first loss NaN
    hold_file: str | None = None  # after the first epoch, wait until this file exists (a stop lands mid-run)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Faults:
        return cls(cfg.get("debug.fail_epoch"), cfg.get("debug.nan_epoch"), cfg.get("debug.hold_file"))


@dataclass(frozen=True)
class Plan:
    """How long and how carefully to train; `name` prefixes the metrics (`<name>/loss`, `<name>/epoch`, ...)."""

    name: str
    epochs: int
    seed: int = 0
    max_seconds: float | None = None
    clip_norm: float | None = 1.0
    hint: str = ""  # what to try when the loss goes bad, e.g. "lower gen.lr"
    title: str = ""  # the progress bar's label and the errors' subject (default: name)
    faults: Faults = field(default_factory=Faults)


class Task:
    """What a trainer supplies. `loss` returns the loss, or (loss, {term: tensor}) whose terms are averaged into
    `<name>/loss_<term>`; the hooks default to nothing."""

    def batches(self, epoch: int) -> Iterable[Any]:
        raise NotImplementedError

    def loss(self, batch: Any) -> torch.Tensor | tuple[torch.Tensor, Mapping[str, torch.Tensor]]:
        raise NotImplementedError

    def state(self) -> dict[str, Any]:
        """What the checkpoint holds besides the loop's own keys (weights, moving averages, scheduler state)."""
        raise NotImplementedError

    def load_state(self, state: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def parameters(self) -> list[torch.nn.Parameter]:
        """The parameters that gradient clipping covers (default: everything the optimizer holds)."""
        return []

    def begin_epoch(self, epoch: int) -> None:
        """Before the epoch's first batch (train mode, the data's crop epoch)."""

    def before_step(self, step: int) -> None:
        """Before optimizer step `step` (0-based over the whole run): e.g. set the learning rate."""

    def after_step(self, step: int) -> None:
        """After optimizer step `step`: e.g. a moving average of the weights, a scheduler."""

    def end_epoch(self, epoch: int, metrics: dict[str, float]) -> None:
        """After the epoch's last step, before its checkpoint: add measured figures to `metrics`."""


class Loop:
    CHECKPOINT_KEYS = ("optimizer", "epoch", "step", "history", "seconds", "stopped_early")

    def __init__(self, task: Task, optimizer: torch.optim.Optimizer, plan: Plan, *,
                 checkpoint: str | Path | None = None, device: torch.device | str | None = None,
                 progress: bool = False):
        self.task, self.opt, self.plan = task, optimizer, plan
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.device = resolve_device(device)
        self.progress = progress
        self.epoch, self.step, self.seconds, self.stopped = 0, 0, 0.0, False
        self.history: list[dict[str, float]] = []
        self.resumed = False

    @property
    def title(self) -> str:
        return self.plan.title or self.plan.name

    @property
    def finished(self) -> bool:
        """Every planned epoch done, or the time budget spent."""
        return self.stopped or self.epoch >= self.plan.epochs

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def resume(self, source: str | Path | None) -> list[dict[str, float]]:
        """Continue from a checkpoint file (or the folder holding one under this loop's file name); a missing one
        is a fresh start. Returns the history so far."""
        path = self._checkpoint_in(source)
        if path is None:
            return self.history
        state = torch.load(path, map_location=self.device, weights_only=True)
        self.task.load_state(state)
        self.opt.load_state_dict(state["optimizer"])
        self.epoch, self.history = int(state["epoch"]), list(state["history"])
        self.step = int(state.get("step", 0))
        self.seconds, self.stopped = float(state["seconds"]), bool(state["stopped_early"])
        self.resumed = True
        return self.history

    def _checkpoint_in(self, source: str | Path | None) -> Path | None:
        if source is None:
            return None
        path = Path(source)
        if path.is_dir():
            path = path / (self.checkpoint.name if self.checkpoint is not None else f"{self.plan.name}.pt")
        return path if path.is_file() else None

    def save(self) -> None:
        if self.checkpoint is None:
            return
        state = {**self.task.state(), "optimizer": self.opt.state_dict(), "epoch": self.epoch, "step": self.step,
                 "history": self.history, "seconds": self.seconds, "stopped_early": self.stopped}
        with atomic_write(self.checkpoint) as f:
            torch.save(state, f)

    # -- training -------------------------------------------------------------------------------------------------
    def run(self) -> Iterator[dict[str, float]]:
        """Train the remaining epochs, yielding each epoch's metrics once its checkpoint is written."""
        bar = None
        if self.progress and not self.finished:
            from tqdm import tqdm

            bar = tqdm(desc=self.title, unit="epoch", initial=self.epoch, total=self.plan.epochs)
        try:
            while not self.finished:
                metrics = self._epoch()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{metrics[f'{self.plan.name}/loss']:.4f}")
                yield metrics
        finally:
            if bar is not None:
                bar.close()

    def fit(self) -> list[dict[str, float]]:
        for _ in self.run():
            pass
        return self.history

    def _hold(self, number: int) -> None:
        f = self.plan.faults
        if f.fail_epoch == number and not self.resumed:
            raise RuntimeError(f"debug.fail_epoch={number}: injected failure at {self.title} epoch {number}")
        while number > 1 and not self.resumed and f.hold_file and not Path(f.hold_file).exists():
            time.sleep(0.2)

    def _epoch(self) -> dict[str, float]:
        plan, task = self.plan, self.task
        number = self.epoch + 1
        self._hold(number)
        t0 = time.perf_counter()
        task.begin_epoch(self.epoch)
        params = task.parameters() or [p for g in self.opt.param_groups for p in g["params"]]
        sums: dict[str, float] = defaultdict(float)
        steps = 0
        cuda = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(derive_seed(plan.seed, f"epoch:{self.epoch}"))
            for batch in task.batches(self.epoch):
                if self.device.type != "cpu":
                    batch = to_device(batch, self.device)
                task.before_step(self.step)
                out = task.loss(batch)
                loss, terms = out if isinstance(out, tuple) else (out, {})
                if plan.faults.nan_epoch == number and not self.resumed:
                    loss = loss * float("nan")
                value = float(loss.detach())
                if not math.isfinite(value):
                    cause = " (injected by debug.nan_epoch)" if plan.faults.nan_epoch == number else ""
                    parts = ", ".join(f"{k} {float(v.detach()):.4g}" for k, v in terms.items())
                    raise FloatingPointError(
                        f"{self.title}: the loss became {value} at epoch {number}, step {steps + 1}{cause}"
                        f"{f' (terms: {parts})' if parts else ''}; {plan.hint or 'lower the learning rate'} or check "
                        "the data")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                if plan.clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(params, plan.clip_norm)
                self.opt.step()
                task.after_step(self.step)
                self.step += 1
                steps += 1
                sums["loss"] += value
                for k, v in terms.items():
                    sums[f"loss_{k}"] += float(v.detach())
                if plan.max_seconds is not None and self.seconds + time.perf_counter() - t0 > plan.max_seconds:
                    self.stopped = True
                    break
        if steps == 0:
            raise RuntimeError(f"{self.title}: epoch {number} had no batches (no training data?)")
        name = plan.name
        metrics = {f"{name}/{k}": v / steps for k, v in sums.items()}
        first = self.history[0][f"{name}/loss"] if self.history else None
        if first is not None and first > 0 and metrics[f"{name}/loss"] > DIVERGED * first:
            raise FloatingPointError(f"{self.title}: the loss diverged at epoch {number} "
                                     f"({metrics[f'{name}/loss']:.4g}, first epoch {first:.4g}); "
                                     f"{plan.hint or 'lower the learning rate'}")
        seconds = time.perf_counter() - t0  # training only: what the time budget counts
        self.seconds += seconds
        metrics.update({f"{name}/epoch": number, f"{name}/steps": steps, f"{name}/stopped_early": float(self.stopped),
                        f"cost/{name}_epoch_seconds": seconds})
        task.end_epoch(self.epoch, metrics)
        self.epoch = number
        self.history.append(metrics)
        self.save()
        return metrics
