"""Content hashes, file locks and atomic writes: the one way every cache in the workspace is written.

Concurrent trials (and nodes sharing storage) may ask for the same cached thing at once. Each cache entry is built
under an exclusive lock, written to a temporary name beside its final path, and renamed into place, so a reader
never sees half a file and two writers never compute the same entry twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")


def _canonical(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)  # 1.0 and 1 are the same config value
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return _canonical(obj.tolist())
    return obj


def content_hash(obj: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able object (key order and int/float spelling do not matter)."""
    blob = json.dumps(_canonical(obj), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


class FileLock:
    """Exclusive advisory lock (flock) on `path`; blocks, or raises TimeoutError after `timeout` seconds."""

    def __init__(self, path: str | os.PathLike, timeout: float | None = None, poll: float = 0.05):
        self.path = Path(path)
        self.timeout = timeout
        self.poll = poll
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        start = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if self.timeout is not None else 0))
                break
            except BlockingIOError:
                if time.monotonic() - start > self.timeout:  # type: ignore[operator]
                    os.close(fd)
                    raise TimeoutError(f"could not lock {self.path} within {self.timeout:.0f} s") from None
                time.sleep(self.poll)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "FileLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def lock_for(path: str | os.PathLike) -> FileLock:
    """The lock that guards a cache entry at `path` (a sibling `.lock` file)."""
    p = Path(path)
    return FileLock(p.with_name(p.name + ".lock"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside `path`; on success fsync and rename it into place, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; caches are shared (cluster storage, other users)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside `path`; on success rename it to `path` (replacing nothing), else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if path.exists():  # someone finished first (only possible without the lock): keep theirs
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)


_recorders: list[set[Path]] = []
_building = threading.local()  # .depth: inside how many builds this thread is (what a build reads is its input)


@contextlib.contextmanager
def recording() -> Iterator[set[Path]]:
    """Collects every cache entry used inside the block, built or found: what a stage needs, so that exactly that
    can be shipped to other machines (the prepare stage on a cluster).

    Entries read only while building another entry are left out: a second run finds the built entry and never
    reads them, and the set must be the same on both runs (it keys the shipped bundle)."""
    seen: set[Path] = set()
    _recorders.append(seen)
    try:
        yield seen
    finally:
        _recorders.remove(seen)


def note(path: str | os.PathLike) -> None:
    """Tell an active `recording()` about an entry read without `get_or_build` (an alias, a peeked folder)."""
    if getattr(_building, "depth", 0):
        return
    for seen in _recorders:
        seen.add(Path(path))


def get_or_build(path: str | os.PathLike, build: Callable[[Path], None],
                 exists: Callable[[Path], bool] | None = None) -> Path:
    """Return `path`, building it first under its lock if it is missing.

    `build(tmp)` writes the entry into `tmp` (a file path or folder, whichever it creates) and must not touch `path`;
    the result is renamed into place. A second caller waiting on the lock finds the entry built and returns at once.
    """
    path = Path(path)
    note(path)
    ready = exists or (lambda p: p.exists())
    if ready(path):
        return path
    with lock_for(path):
        if ready(path):
            return path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()
        try:
            _building.depth = getattr(_building, "depth", 0) + 1
            try:
                build(tmp)
            finally:
                _building.depth -= 1
            os.replace(tmp, path)
        except BaseException:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists():
                tmp.unlink()
            raise
    return path
