"""Per-stage GPU cost of a GPU-profile sweep for `--dry-run`: optimizer steps from the resolved sizes of one trial,
times a per-step time on the reference GPU.

The step counts follow from the config (epochs x steps per epoch, or passes over a HumanML3D-sized dataset where a
key says "one pass"); the step times are assumptions until `bench/gpu_stages.py` measures them on a GPU (BENCHMARKS.md
says which are measured). Everything here is an upper bound when ASHA stops weak trials early.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# HumanML3D's training split with its mirror images (Guo et al. 2022): motions, captions, and motion words per caption
# (the alignment trains on word occurrences); test and val sizes for scoring
DATASET = {"train_motions": 23_384, "captions_per_motion": 3, "motion_words": 4, "test_items": 4_384,
           "reference": "HumanML3D-sized"}
# seconds per optimizer step (or per sampling forward pass of a batch of 64) on one A10G at the paper sizes:
# ASSUMED, not measured; bench/gpu_stages.py prints the measured ones
STEP_SECONDS = {"evaluator": 0.03, "tokenizer": 0.15, "align": 0.10, "generator": 0.06, "sample": 0.012}
MEASURED = False


@dataclass(frozen=True)
class Stage:
    name: str
    once: bool  # once per sweep (the prepare stage) or once per trial
    steps: int
    seconds_per_step: float
    what: str

    @property
    def gpu_hours(self) -> float:
        return self.steps * self.seconds_per_step / 3600


def _passes(steps_key: int, items: int, batch: int) -> int:
    return steps_key or math.ceil(items / batch)


def stages(cfg: Mapping[str, Any]) -> list[Stage]:
    d = DATASET
    captions = d["train_motions"] * d["captions_per_motion"]
    out = [Stage("evaluators", True,
                 3 * cfg["evaluator.epochs"] * math.ceil(captions / cfg["evaluator.batch"]), STEP_SECONDS["evaluator"],
                 "scoring evaluator, val scorer, partition model")]
    if cfg["gen.kind"] == "masked":
        out.append(Stage("tokenizer", True, cfg["gen.vq_epochs"] * _passes(cfg["gen.vq_steps"], d["train_motions"],
                                                                           cfg["gen.vq_batch"]),
                         STEP_SECONDS["tokenizer"], "residual VQ, shared by every trial"))
    if cfg["align.enabled"]:
        occurrences = captions * d["motion_words"]
        out.append(Stage("alignment", False, cfg["align.epochs"] * _passes(cfg["align.steps"], occurrences,
                                                                           cfg["align.batch"]),
                         STEP_SECONDS["align"], "MATE's rows and heads"))
    out.append(Stage("generator", False, cfg["gen.epochs"] * _passes(cfg["gen.steps"], captions, cfg["gen.batch"]),
                     STEP_SECONDS["generator"], f"{cfg['gen.kind']} generator"))
    rounds = cfg["gen.iterations"] if cfg["gen.kind"] == "masked" else cfg["eval.sampler_steps"]
    val = cfg["gen.epochs"] * math.ceil(cfg["eval.val_items"] / 64)
    test = (cfg["eval.repeats"] if cfg["eval.regenerate"] else 1) * math.ceil(d["test_items"] / 64)
    mm = cfg["eval.mm_samples"] * math.ceil(cfg["eval.mm_texts"] / 64) if cfg["eval.mm_texts"] else 0
    out.append(Stage("scoring", False, (val + test + mm) * rounds, STEP_SECONDS["sample"],
                     f"val every report, test x{cfg['eval.repeats'] if cfg['eval.regenerate'] else 1}"
                     + (f", MultiModality {cfg['eval.mm_texts']} x {cfg['eval.mm_samples']}" if mm else "")))
    return out


def format_stages(cfg: Mapping[str, Any], trials: int, gpus_per_trial: float, concurrent: int) -> str:
    """The per-stage table of a GPU sweep, and its wall time when the GPUs are the bottleneck: `concurrent` trials
    at `gpus_per_trial` each hold that many GPUs (packing two a GPU shares, it does not add, GPU time)."""
    rows = stages(cfg)
    lines = [f"GPU-hours by stage ({DATASET['reference']}; step times "
             f"{'measured' if MEASURED else 'ASSUMED until bench/gpu_stages.py measures them'}, one A10G):"]
    total = 0.0
    for s in rows:
        n = 1 if s.once else trials
        total += s.gpu_hours * n
        lines.append(f"  {s.name:11s} {s.steps:>9,d} steps x {s.seconds_per_step:.3f} s = {s.gpu_hours:7.2f} GPU-h"
                     f" {'once' if s.once else f'x {n} trials'} = {s.gpu_hours * n:8.1f}  ({s.what})")
    gpus = max(concurrent * gpus_per_trial, 1e-9)
    once = sum(s.gpu_hours for s in rows if s.once)
    wall = once + (total - once) / gpus if gpus_per_trial > 0 else float("nan")
    lines.append(f"  total {total:.1f} GPU-hours; about {wall:.0f} h wall on {concurrent * gpus_per_trial:g} GPUs "
                 f"({concurrent} trials at {gpus_per_trial:g} GPU; the prepare stage first, on one)"
                 if gpus_per_trial > 0 else f"  total {total:.1f} GPU-hours (this space asks for no GPU)")
    return "\n".join(lines)
