"""Shared storage for a sweep (`--storage URI`: a local or NFS path, or `s3://bucket/prefix`), through pyarrow's
filesystems, the same layer Ray Tune uses for its `storage_path`, so one URI (and one set of credentials: the
standard AWS variables, `AWS_ENDPOINT_URL` for an S3-compatible server) serves Tune's checkpoints and our files.

Layout under the URI: `<sweep>/tune/run-<k>/` (Tune), `<sweep>/results.csv`, `best.yaml`, `report/`;
`prepared/<key>.tar` (the prepare stage's outputs, see `mate.sweep.nodes`); `cache/segments/…` (LLM segmentation
published from the machine that holds the key).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

from mate.errors import UserError

# bytes per read when downloading: pyarrow's default (1 MiB) makes a 40 MB bundle 39 ranged GETs, thousands for a
# GB pack (bench/ship_bench.py: 400 MB from moto's S3 in 232 s per node at 1 MiB, 14 s at 32 MiB)
DOWNLOAD_CHUNK = 32 << 20


class Storage:
    """One root on a pyarrow filesystem; paths below it are '/'-joined relative strings."""

    def __init__(self, uri: str | os.PathLike):
        import pyarrow.fs as pafs

        self.uri = str(uri)
        if "://" not in self.uri:
            self.uri = str(Path(self.uri).expanduser().resolve())
        try:
            self.fs, self.root = pafs.FileSystem.from_uri(self.uri)
        except (OSError, ValueError) as exc:
            raise UserError(f"--storage {uri}: not a storage URI pyarrow can open ({exc})") from None
        self.root = self.root.rstrip("/")
        self.is_local = isinstance(self.fs, pafs.LocalFileSystem)

    @classmethod
    def on(cls, fs, root: str) -> Storage:
        """A root on a filesystem someone already opened (Tune's `trial.storage`: its filesystem and trial path)."""
        import pyarrow.fs as pafs

        self = cls.__new__(cls)
        self.fs, self.root = fs, root.rstrip("/")
        self.is_local = isinstance(fs, pafs.LocalFileSystem)
        self.uri = self.root if self.is_local else f"{fs.type_name}://{self.root}"
        return self

    def __repr__(self) -> str:
        return f"Storage({self.uri!r})"

    def path(self, rel: str = "") -> str:
        return f"{self.root}/{rel}".rstrip("/") if rel else self.root

    def url(self, rel: str = "") -> str:
        """What Ray's `storage_path` and `Tuner.restore` take: a local path, or the URI with its scheme."""
        if self.is_local:
            return self.path(rel)
        return f"{self.uri.split('://', 1)[0]}://{self.path(rel)}"

    # -- checks ---------------------------------------------------------------------------------------------------
    def check_writable(self) -> None:
        """Write, read back and delete a probe file: a bad bucket, missing credentials or a read-only mount is one
        clear message on the driver, before any trial starts."""
        probe = f".mate-probe-{uuid.uuid4().hex[:8]}"
        try:
            self.write_bytes(probe, b"ok")
            if self.read_bytes(probe) != b"ok":
                raise OSError("read back something else than it wrote")
            self.fs.delete_file(self.path(probe))
        except OSError as exc:
            raise UserError(f"--storage {self.uri}: cannot write there ({_first_line(exc)}); check the path or "
                            "bucket and its credentials (AWS_* variables or the node's instance profile)") from None

    # -- files ----------------------------------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def is_file(self, rel: str) -> bool:
        import pyarrow.fs as pafs

        return self.fs.get_file_info(self.path(rel)).type == pafs.FileType.File

    def list_dirs(self, rel: str) -> list[str]:
        """Names of the folders directly under `rel` (S3 has no folders: the prefixes that hold objects)."""
        import pyarrow.fs as pafs

        infos = self.fs.get_file_info(pafs.FileSelector(self.path(rel), allow_not_found=True))
        return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)

    def list_files(self, rel: str) -> list[str]:
        """Every file under `rel`, as paths relative to `rel`."""
        import pyarrow.fs as pafs

        base = self.path(rel)
        infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        return sorted(i.path[len(base) + 1:] for i in infos if i.type == pafs.FileType.File)

    @contextlib.contextmanager
    def _landing(self, rel: str) -> Iterator[str]:
        """Where to write `rel` so it appears whole or not at all: a temporary name moved into place on a local or
        NFS path, the object itself on S3 (objects appear whole anyway)."""
        target = self.path(rel)
        if not self.is_local:
            yield target
            return
        parent, name = target.rsplit("/", 1)
        self.fs.create_dir(parent, recursive=True)
        tmp = f"{parent}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        yield tmp
        self.fs.move(tmp, target)

    def write_bytes(self, rel: str, data: bytes) -> None:
        with self._landing(rel) as target, self.fs.open_output_stream(target) as f:
            f.write(data)

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode())

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode()

    def upload(self, local: str | os.PathLike, rel: str) -> None:
        """A local file or folder to `rel` (files are streamed: a pack of several GB never sits in memory)."""
        import pyarrow.fs as pafs

        local = Path(local).resolve()
        copy = partial(pafs.copy_files, source_filesystem=pafs.LocalFileSystem(), destination_filesystem=self.fs)
        if local.is_dir():
            self.fs.create_dir(self.path(rel), recursive=True)
            copy(str(local), self.path(rel))
            return
        with self._landing(rel) as target:
            copy(str(local), target)

    def download(self, rel: str, local: str | os.PathLike) -> Path:
        """`rel` (a file or a folder) to the local path `local`."""
        import pyarrow.fs as pafs

        local = Path(local)
        (local.parent if self.is_file(rel) else local).mkdir(parents=True, exist_ok=True)
        pafs.copy_files(self.path(rel), str(local), source_filesystem=self.fs,
                        destination_filesystem=pafs.LocalFileSystem(), chunk_size=DOWNLOAD_CHUNK)
        return local


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def is_uri(value: str | None) -> bool:
    return bool(value) and "://" in str(value) and not str(value).startswith("file://")
