"""metrics.json and run.json: what every command that computes metrics writes to --out (docs/architecture.md §1).

run.json makes a number reproducible: the resolved config, seeds, dataset hash, evaluator shas, the git commit (and
whether the tree was dirty), package versions and the command line. Secrets never enter it: config names the
environment variable that holds a key, never the key.
"""

from __future__ import annotations

import json
import math
import platform as _stdlib_platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Mapping

from .cache import write_json

_PACKAGES = ("mate-platform", "torch", "transformers", "numpy", "ray", "optuna", "mlflow", "openai")


def git_state(cwd: str | Path | None = None) -> dict[str, Any]:
    here = Path(cwd or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return {"git_sha": None, "git_dirty": None}
    if sha.returncode:
        return {"git_sha": None, "git_dirty": None}
    return {"git_sha": sha.stdout.strip(), "git_dirty": bool(dirty.stdout.strip())}


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": _stdlib_platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def write_outputs(out: str | Path, metrics: Mapping[str, float], config: Mapping[str, Any] | None = None,
                  **extra: Any) -> Path:
    """Write `<out>/metrics.json` (name -> number; NaN as null) and `<out>/run.json`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else float(v)) for k, v in metrics.items()}
    write_json(out / "metrics.json", clean)
    run = {"config": dict(config or {}), "command": sys.argv, **git_state(), "versions": versions(), **extra}
    write_json(out / "run.json", json.loads(json.dumps(run, default=str)))
    return out
