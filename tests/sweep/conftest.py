"""The sweep tests' one space-file writer: every sweep test runs a `tiny` space with the same objective, so only
what a test is about (its name, parameters or points, constants and budget) is written in the test."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

SIGMA = {"align.sigma_scale": {"loguniform": [0.25, 4.0]}}
GEN_LR = {"gen.lr": {"loguniform": [1.0e-4, 1.0e-2]}}


@pytest.fixture(scope="session")
def tiny_space():
    """`write(path, name, params=SIGMA | points=[...], constants=None, **budget)` writes a tiny-profile space to
    `path` and returns it: a search over `params` (TPE on val R-Precision top-3) or, with `points`, a points grid.
    The budget defaults to one CPU, no GPU, one trial at a time and grace_period = max_epochs (ASHA stops nothing)."""

    def write(path: Path, name: str, *, params: dict | None = None, points: list | None = None,
              constants: dict | None = None, **budget) -> Path:
        budget = {"cpus_per_trial": 1, "gpus_per_trial": 0, "max_concurrent": 1, **budget}
        if "max_epochs" in budget:
            budget.setdefault("grace_period", budget["max_epochs"])
        space = {"name": name, "profile": "tiny", **({"points": points} if points is not None else
                                                     {"search": params or SIGMA}),
                 "objective": {"metric": "val/eval/r_precision_top3", "mode": "max"}, "budget": budget}
        if constants:
            space["constants"] = constants
        path = Path(path)
        path.write_text(yaml.safe_dump(space, sort_keys=False))
        return path

    return write
