"""Cache primitives: stable content hashes, atomic writes, and one builder under concurrency."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest

from mate.cache import atomic_write, content_hash, get_or_build


def test_content_hash_ignores_key_order_and_number_spelling():
    assert content_hash({"a": 1, "b": [1.0, "x"]}) == content_hash({"b": [1, "x"], "a": 1.0})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as f:
            f.write(b"half")
            raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]  # no temp file left behind
    with atomic_write(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new"


def _slow_build(path: str, log: str) -> None:
    def build(tmp: Path) -> None:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)
        tmp.write_text("built")

    get_or_build(path, build)


def test_concurrent_builders_build_once(tmp_path):
    target, log = tmp_path / "entry.txt", tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_slow_build, args=(str(target), str(log))) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert target.read_text() == "built"
    assert len(log.read_text().split()) == 1  # exactly one process built it


def test_cache_files_are_readable_by_others(tmp_path):
    """mkstemp makes 0600 files; shared caches (cluster storage) must follow the umask instead."""
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "shared.bin") as f:
            f.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared.bin").stat().st_mode & 0o777 == 0o644
