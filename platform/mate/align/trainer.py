"""The alignment's training: the rows with their own learning rate, on `mate.loop` (checkpoint, resume, checks).

`fit` knows nothing of where batches come from (`make_batches(epoch)`) or how the run is measured
(`evaluate(aligner) -> metrics`), so the same loop serves `mate align`, a sweep trial and the tests. The frozen-rows
control (`align.train_rows=false`) runs the same heads and schedule with the rows frozen and L_sent only.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch

from mate.loop import Loop, Plan, Task

from .losses import TERMS, total_loss, weights_from_config

CHECKPOINT = "align.pt"
Report = Callable[[dict, "Path | None"], None]


def loss_weights(cfg: Mapping) -> dict[str, float]:
    weights = weights_from_config(cfg)
    if not cfg["align.train_rows"]:  # the frozen-rows control: L_sent only
        weights = {name: (w if name == "sent" else 0.0) for name, w in weights.items()}
    return weights


def trainable_state(aligner) -> dict[str, torch.Tensor]:
    """Heads and trained rows only: the frozen language model is rebuilt from its folder, not checkpointed."""
    return {k: v.detach().clone() for k, v in aligner.state_dict().items()
            if not k.startswith("encoder.") or k.endswith(".rows")}


def _optimizer(aligner, cfg) -> torch.optim.Optimizer:
    groups = [{"params": aligner.head_parameters(), "lr": cfg["align.lr"]}]
    rows = aligner.encoder.rows
    if rows is not None:
        rows.rows.requires_grad_(bool(cfg["align.train_rows"]))
        if cfg["align.train_rows"]:
            groups.append({"params": [rows.rows], "lr": cfg["align.row_lr"], "weight_decay": 0.0})
    return torch.optim.AdamW(groups, weight_decay=1e-4)


class _Alignment(Task):
    def __init__(self, aligner, make_batches: Callable[[int], Iterable[dict]], weights: dict[str, float],
                 evaluate: Callable[[object], dict] | None):
        self.aligner, self.make_batches, self.weights, self.evaluate = aligner, make_batches, weights, evaluate

    def begin_epoch(self, epoch: int) -> None:
        self.aligner.train()

    def batches(self, epoch: int):
        return self.make_batches(epoch)

    def loss(self, batch):
        terms, _ = self.aligner.terms(batch, self.weights)
        return total_loss(terms, self.weights), terms

    def end_epoch(self, epoch: int, metrics: dict) -> None:
        metrics.update({f"align/loss_{n}": 0.0 for n in TERMS if f"align/loss_{n}" not in metrics})
        if self.evaluate is not None:
            self.aligner.eval()
            metrics.update(self.evaluate(self.aligner))

    def state(self) -> dict:
        return {"model": trainable_state(self.aligner)}

    def load_state(self, state) -> None:
        self.aligner.load_state_dict(state["model"], strict=False)


def fit(aligner, make_batches: Callable[[int], Iterable[dict]], cfg: Mapping, *, report: Report | None = None,
        evaluate: Callable[[object], dict] | None = None, checkpoint_dir: str | Path | None = None,
        resume_dir: str | Path | None = None, progress: bool = False, seed: int = 0) -> list[dict]:
    """Train for `align.epochs` on `mate.loop`; returns the per-epoch metrics. `resume_dir` continues from its
    checkpoint; a NaN loss stops the run with a clear error."""
    weights = loss_weights(cfg)
    checkpoint = Path(checkpoint_dir) / CHECKPOINT if checkpoint_dir is not None else None
    plan = Plan("align", cfg["align.epochs"], seed=seed, clip_norm=5.0, hint="lower align.lr/row_lr", title="align")
    loop = Loop(_Alignment(aligner, make_batches, weights, evaluate), _optimizer(aligner, cfg), plan,
                checkpoint=checkpoint, device=next(aligner.parameters()).device, progress=progress)
    loop.resume(resume_dir)
    for metrics in loop.run():
        if report is not None:
            report(metrics, checkpoint.parent if checkpoint is not None else None)
    return loop.history


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
