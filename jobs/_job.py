"""What every Ray Job entrypoint shares: the submitted `platform/` source first on the path, the cluster the job
runs in as `--address`, and a workspace that outlives the job (`$MATE_WORKSPACE`, default `~/mate-runs` on the
head: a job's working directory is a fresh copy each submission, so stores kept there would be lost)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PLATFORM = Path(__file__).resolve().parents[1] / "platform"


def _has(args: list[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def run(command: list[str], args: list[str], *, ray_address: bool = False) -> int:
    sys.path.insert(0, str(PLATFORM))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from mate.cli import main

    args = list(args)
    if not _has(args, "--workspace"):
        args = ["--workspace", os.environ.get("MATE_WORKSPACE", str(Path("~/mate-runs").expanduser())), *args]
    if ray_address and not _has(args, "--address"):
        args = ["--address", os.environ.get("RAY_ADDRESS") or "auto", *args]
    return main([*command, *args])
