"""The tree stays lint-clean under the project's ruff rules (pyproject.toml's [tool.ruff]), so a long line or an
unused import fails here, naming its file and line, rather than piling up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "platform", "tests", "bench"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"ruff check (exit {done.returncode}):\n{done.stdout}{done.stderr}"
