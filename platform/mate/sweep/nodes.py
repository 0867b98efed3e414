"""The prepare stage's outputs on a cluster: published once to shared storage, fetched once per node.

The driver records every cache entry the prepare stage used (`mate.cache.recording`: the pack, both evaluators, the
localizations, the frozen text features) and writes them with the dataset into one tar, `prepared/<key>.tar` under
`--storage`, keyed by their names (which are content hashes). A trial on a node calls `fetch`: the first trial of
that node downloads and unpacks the tar into `<node cache>/<node id>/<key>/` under a file lock, the others on the
node wait for it and share the folder as their workspace. Each download is logged in `<node cache>/<node id>/
fetches.jsonl`, so "once per node" is checked, not assumed.

Why a tar on storage and not Ray's object store (measured, `bench/ship_bench.py`, BENCHMARKS.md): on one machine the
object store is as fast as a tar on a local folder, but it holds the whole bundle in the head's shared memory for
the sweep's life, copies it into every fetching node's, and dies with the driver (`OwnerDiedError`), so a resumed
sweep would rebuild and re-put it; the tar holds no object-store memory, is streamed to disk once per node, and
is what a restored sweep finds again. The dataset's motions stay behind: the pack holds the features
(`new_joint_vecs/` would ship them twice, about half of a HumanML3D bundle) and the joint positions (`new_joints/`)
are recoverable from them; the captions, splits, Mean/Std and annotations travel, and the node's data folder is
registered as the pack's dataset without being read.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from mate.cache import content_hash, get_or_build, lock_for
from mate.errors import UserError
from mate.storage import Storage

FORMAT = 2  # 2: the motions no longer ship beside the pack
SKIP_DATA = ("new_joints", "new_joint_vecs")
NODE_CACHE_ENV = "MATE_NODE_CACHE"


def node_cache_root() -> Path:
    return Path(os.environ.get(NODE_CACHE_ENV) or Path(tempfile.gettempdir()) / "mate-node")


def bundle_key(workspace: Path, entries: Iterable[Path], dataset_hash: str,
               model_hash: str | None = None) -> tuple[str, list[str]]:
    """The entries as workspace-relative paths (those outside the workspace's cache are not shippable caches) and
    the bundle's key."""
    ws = workspace.resolve()
    rels = sorted({str(p.resolve().relative_to(ws)) for p in entries
                   if p.exists() and p.resolve().is_relative_to(ws / "cache")})
    key = {"format": FORMAT, "entries": rels, "dataset": dataset_hash}
    if model_hash:
        key["model"] = model_hash
    return content_hash(key), rels


def publish(storage: Storage, workspace: str | Path, entries: Iterable[Path], data_dir: str | Path,
            dataset_hash: str, log: Callable[[str], None] = print,
            model_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the bundle (once: an existing key is reused) and return what trials need to fetch it. `model_dir`, a
    local language-model folder (`encoder.path`), travels in it: a node has only the packaged default model."""
    from mate.text.families import folder_hash

    workspace, data_dir = Path(workspace), Path(data_dir).resolve()
    model = Path(model_dir).expanduser().resolve() if model_dir else None
    key, rels = bundle_key(workspace, entries, dataset_hash, folder_hash(model) if model else None)
    rel = f"prepared/{key}.tar"
    if storage.is_file(rel):
        log(f"prepare: outputs already on {storage.url(rel)}")
    else:
        def build(tmp: Path) -> None:
            with tarfile.open(tmp, "w") as tar:
                for entry in rels:
                    tar.add(workspace / entry, arcname=f"ws/{entry}")
                tar.add(data_dir, arcname="data", filter=_skip_data)
                if model is not None:
                    tar.add(model, arcname="model")

        local = get_or_build(workspace / "cache" / "bundles" / f"{key}.tar", build)
        start = time.perf_counter()
        storage.upload(local, rel)
        log(f"prepare: published {len(rels)} cache entries and the dataset ({local.stat().st_size / 1e6:.1f} MB) "
            f"to {storage.url(rel)} in {time.perf_counter() - start:.1f} s")
    return {"storage": storage.uri, "key": key, "dataset_hash": dataset_hash, "model": model is not None}


def _skip_data(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = info.name.split("/")
    return None if len(parts) > 1 and parts[1] in SKIP_DATA else info


def fetch(shipped: dict[str, Any], node_id: str, root: Path | None = None) -> tuple[Path, Path]:
    """The node-local (workspace, dataset) of a published bundle, downloaded by the first trial on this node."""
    from mate.data.pack import register_pack

    node = (root or node_cache_root()) / node_id
    folder = node / shipped["key"]
    ready = folder / ".ready"
    if not ready.is_file():
        with lock_for(folder):
            if not ready.is_file():
                start = time.perf_counter()
                storage = Storage(shipped["storage"])
                rel = f"prepared/{shipped['key']}.tar"
                if not storage.is_file(rel):
                    raise UserError(f"{storage.url(rel)}: the sweep's prepared data is not on the storage (was it "
                                    "deleted?); run the sweep again to publish it")
                node.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=node) as tmp:
                    tar_path = storage.download(rel, Path(tmp) / "bundle.tar")
                    size = tar_path.stat().st_size
                    with tarfile.open(tar_path) as tar:
                        tar.extractall(folder, filter="data")
                register_pack(folder / "data", folder / "ws", shipped["dataset_hash"])
                ready.write_text("")
                with open(node / "fetches.jsonl", "a") as f:
                    f.write(json.dumps({"node_id": node_id, "key": shipped["key"], "pid": os.getpid(),
                                        "bytes": size, "seconds": round(time.perf_counter() - start, 3)}) + "\n")
    return folder / "ws", folder / "data"


def shipped_model(shipped: dict[str, Any], node_ws: Path) -> str | None:
    """The node's copy of the sweep's `encoder.path` (beside the fetched workspace), None when it ships none."""
    return str(node_ws.parent / "model") if shipped.get("model") else None


def fetch_count(node_id: str, root: Path | None = None) -> int:
    path = (root or node_cache_root()) / node_id / "fetches.jsonl"
    return len(path.read_text().splitlines()) if path.is_file() else 0
