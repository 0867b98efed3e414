"""The prepare stage (DESIGN 5): everything a sweep's trials share, built once on the driver before any trial.

The dataset (synthesized or packed), the scoring evaluator, the partition model, the segmentation + localization of
every `segment.backend` the space uses, and the base model's text features. Trials then receive the keys that point
at these (`pinned`): the dataset folder, both evaluator seeds and the scoring evaluator's sha, which every trial
checks, so a trial can never score itself with a different evaluator than its siblings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def prepare(space, workspace: str | Path, data: str | None = None, *, progress: bool = True,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    from mate.align.localize import localize
    from mate.config import resolve
    from mate.data.pack import open_pack
    from mate.data.source import resolve_dataset
    from mate.evaluate.retrieval import train_or_load
    from mate.evaluate.retrieval.train import all_captions, partition_seed
    from mate.text.cached import frozen_features
    from mate.text.encoder import TextEncoder

    start = time.perf_counter()
    workspace = Path(workspace)
    base = space.trial_config(extra={"data.dir": str(data)} if data else None)
    data_dir = resolve_dataset(base, workspace, progress=progress)
    pack = open_pack(data_dir, workspace, progress=progress)
    encoder = TextEncoder.load(base["encoder.path"], base["encoder.family"])
    pinned = {"data.dir": str(Path(data_dir).resolve()), "evaluator.seed": base.seed_for("evaluator"),
              "align.partition_seed": partition_seed(base)}
    log(f"prepare: dataset {pack.content_hash[:12]} ({len(pack)} clips), scoring evaluator")
    evaluator = train_or_load(pack, encoder, base, workspace, seed=pinned["evaluator.seed"], progress=progress)
    pinned["evaluator.sha"] = evaluator.sha
    try:
        backends = space.values_of("segment.backend")
    except ValueError:
        backends = [base["segment.backend"]]
    if base["align.enabled"] or "align.enabled" in space.varied:
        for backend in backends:
            log(f"prepare: partition model and localization ({backend} segmentation)")
            cfg = resolve({**base.to_dict(), **pinned, "segment.backend": backend})
            localize(pack, encoder, cfg, workspace, splits=("train", "val", "test"), progress=progress)
    frozen_features(encoder, all_captions(pack), workspace, progress=progress)
    log(f"prepare: done in {time.perf_counter() - start:.0f} s")
    return pinned
