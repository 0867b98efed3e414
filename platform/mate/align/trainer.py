"""The alignment loop: the rows with their own learning rate, per-epoch reports, checkpoint and resume.

`fit` knows nothing of where batches come from (`make_batches(epoch)`) or how the run is measured
(`evaluate(aligner) -> metrics`), so the same loop serves `mate align`, a sweep trial and the tests. The frozen-rows
control (`align.train_rows=false`) runs the same heads and schedule with the rows frozen and L_sent only.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Mapping

import torch

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


def fit(aligner, make_batches: Callable[[int], Iterable[dict]], cfg: Mapping, *, report: Report | None = None,
        evaluate: Callable[[object], dict] | None = None, checkpoint_dir: str | Path | None = None,
        resume_dir: str | Path | None = None, progress: bool = False) -> list[dict]:
    """Train for `align.epochs`; returns the per-epoch metrics. A NaN loss stops the run with a clear error."""
    weights = loss_weights(cfg)
    opt = _optimizer(aligner, cfg)
    start, history = 0, []
    if resume_dir is not None and (Path(resume_dir) / CHECKPOINT).is_file():
        state = torch.load(Path(resume_dir) / CHECKPOINT, weights_only=False)
        aligner.load_state_dict(state["model"], strict=False)
        opt.load_state_dict(state["optimizer"])
        start, history = state["epoch"], state["history"]
    epochs = range(start, cfg["align.epochs"])
    if progress:
        from tqdm import tqdm

        epochs = tqdm(epochs, desc="align", unit="epoch", initial=start, total=cfg["align.epochs"])
    for epoch in epochs:
        aligner.train()
        sums: dict[str, float] = defaultdict(float)
        steps, t0 = 0, time.perf_counter()
        for batch in make_batches(epoch):
            terms, _ = aligner.terms(batch, weights)
            loss = total_loss(terms, weights)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"align: the loss became {float(loss)} at epoch {epoch} (terms: "
                                         f"{ {k: float(v) for k, v in terms.items()} }); lower align.lr/row_lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 5.0)
            opt.step()
            sums["align/loss"] += float(loss.detach())
            for name, value in terms.items():
                sums[f"align/loss_{name}"] += float(value.detach())
            steps += 1
        metrics = {k: v / max(steps, 1) for k, v in sums.items()}
        metrics.update({f"align/loss_{n}": 0.0 for n in TERMS if f"align/loss_{n}" not in metrics})
        metrics["align/epoch"] = epoch + 1
        metrics["cost/align_epoch_seconds"] = time.perf_counter() - t0
        if evaluate is not None:
            aligner.eval()
            metrics.update(evaluate(aligner))
        history.append(metrics)
        ckpt = None
        if checkpoint_dir is not None:
            ckpt = Path(checkpoint_dir)
            ckpt.mkdir(parents=True, exist_ok=True)
            tmp = ckpt / f".{CHECKPOINT}.tmp"
            torch.save({"model": trainable_state(aligner), "optimizer": opt.state_dict(), "epoch": epoch + 1,
                        "history": history}, tmp)
            tmp.replace(ckpt / CHECKPOINT)
        if report is not None:
            report(metrics, ckpt)
        if progress:
            epochs.set_postfix(loss=f"{metrics['align/loss']:.3f}")
    return history


def finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}
