"""Which dataset a command reads: `data.dir` when given, else the synthetic corpus made once in the workspace."""

from __future__ import annotations

import json
from pathlib import Path

from ..cache import get_or_build


def synthetic_dir(workspace: str | Path, num: int, seed: int) -> Path:
    return Path(workspace) / "data" / f"synth-{num}-s{seed}"


def resolve_dataset(cfg, workspace: str | Path, progress: bool = True) -> Path:
    """`data.dir`, or `<workspace>/data/synth-<num>-s<seed>` (written on first use, under a lock)."""
    if cfg["data.dir"]:
        return Path(cfg["data.dir"])
    from .synth import synthesize

    path = synthetic_dir(workspace, cfg["data.num_clips"], cfg["data.synth_seed"])

    def build(tmp: Path) -> None:
        synthesize(tmp, num=cfg["data.num_clips"], seed=cfg["data.synth_seed"], progress=progress)

    return get_or_build(path, build, exists=lambda p: (p / "meta.json").is_file() and
                        json.loads((p / "meta.json").read_text()).get("num") == cfg["data.num_clips"])
