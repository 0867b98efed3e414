"""The prepare stage (docs/architecture.md §8): everything the trials share, built once on the driver before any trial.

The dataset (synthesized or packed), the scoring evaluator and the val scorer (the same recipe without the val
clips), the partition model, the segmentation + localization of every `segment.backend` the space uses, and the base
model's text features. Trials then receive the keys that point at these (`pinned`): the dataset folder, both evaluator
seeds and the two scorers' shas, which every trial checks, so a trial can never score itself with a different
evaluator than its siblings. With shared storage (a cluster) the cache entries the stage used are published there in
one bundle (`mate.sweep.nodes`), and LLM segmentations published by `mate segment --storage` are pulled in first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mate.errors import UserError
from mate.storage import is_uri

SEGMENTS = "cache/segments"


def prepare(space, workspace: str | Path, data: str | None = None, *, storage=None, progress: bool = True,
            log: Callable[[str], None] = print) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(pinned, shipped): the keys every trial shares, and with `storage` (a `mate.storage.Storage`) where
    the outputs were published for the cluster's nodes (`mate.sweep.nodes`); None on one machine."""
    from mate.cache import recording

    if storage is not None:
        pull_segments(storage, Path(workspace), log)
    with recording() as used:
        pinned, dataset_hash, model_dir = _prepare(space, workspace, data, progress=progress, log=log)
    if storage is None:
        return pinned, None
    from mate.sweep.nodes import publish

    return pinned, publish(storage, Path(workspace), used, pinned["data.dir"], dataset_hash, log=log,
                           model_dir=model_dir)


PREPARED = "prepared.json"  # under <storage>/<sweep>/: what the prepare task gave, reused by a restored sweep


def prepare_on_gpu_worker(space, name: str, data: str | None, storage, *, cpus: float,
                          log: Callable[[str], None] = print) -> tuple[dict[str, Any], dict[str, Any]]:
    """The prepare stage as a Ray task with one GPU, on a worker (the head offers Ray no CPU and its torch is the CPU
    build): it trains the evaluators and the tokenizer there, in the node's own cache, and publishes the bundle to
    `storage`, which is how trials get it anyway. A sweep restored with the same `--data` reuses its record on the
    storage instead of running it again. A local `--data` folder must be visible on the workers (NFS); an
    s3:// dataset always is."""
    import json

    import ray

    record = f"{name}/{PREPARED}"
    if storage.is_file(record):
        done = json.loads(storage.read_text(record))
        if done.get("data") == data and storage.is_file(f"prepared/{done['shipped']['key']}.tar"):
            log(f"prepare: done before ({storage.url(record)}), bundle {done['shipped']['key']}")
            return done["pinned"], done["shipped"]

    @ray.remote
    def task(space, data, uri):
        from mate.storage import Storage
        from mate.sweep.nodes import node_cache_root

        pinned, shipped = prepare(space, node_cache_root() / "prepare", data, storage=Storage(uri), progress=False,
                                  log=lambda line: print(line, flush=True))
        return pinned, shipped, ray.get_runtime_context().get_node_id(), [str(g) for g in ray.get_gpu_ids()]

    log("prepare: as a task with one GPU on a worker (the autoscaler starts one if none is up)")
    ref = task.options(num_gpus=1, num_cpus=cpus).remote(space, data, storage.uri)
    pinned, shipped, node, gpu_ids = ray.get(ref)
    log(f"prepare: ran on node {node} (GPU ids {gpu_ids})")
    storage.write_text(record, json.dumps({"data": data, "pinned": pinned, "shipped": shipped, "node": node}))
    return pinned, shipped


def check_data(data: str) -> None:
    """`--data` names something: a folder, or a URI with objects under it (checked before Ray starts)."""
    from mate.storage import Storage

    if not is_uri(data) and not Path(data).expanduser().is_dir():
        raise UserError(f"--data {data}: no such dataset folder")
    if is_uri(data) and not Storage(data).exists(""):
        raise UserError(f"--data {data}: nothing there (expected a dataset folder in the HumanML3D layout)")


def pull_segments(storage, workspace: Path, log: Callable[[str], None] = print) -> None:
    """LLM segmentations published with `mate segment --storage` (where the API key is) into the workspace, so the
    cluster localizes with them and never needs the key. A local file that exists is kept (it may hold more)."""
    files = storage.list_files(SEGMENTS)
    fetched = [f for f in files if not (workspace / SEGMENTS / f).is_file() and f.endswith(".jsonl")]
    for f in fetched:
        storage.download(f"{SEGMENTS}/{f}", workspace / SEGMENTS / f)
    if fetched:
        log(f"prepare: {len(fetched)} published segmentation file(s) from {storage.url(SEGMENTS)}")


def _prepare(space, workspace: str | Path, data: str | None, *, progress: bool,
             log: Callable[[str], None]) -> tuple[dict[str, Any], str, str | None]:
    from mate.align.localize import localize
    from mate.config import resolve
    from mate.data.pack import open_pack
    from mate.data.source import resolve_dataset
    from mate.evaluate.retrieval import train_or_load, val_scorer
    from mate.evaluate.retrieval.train import all_captions, partition_seed
    from mate.text.cached import frozen_features
    from mate.text.encoder import TextEncoder

    start = time.perf_counter()
    workspace = Path(workspace)
    if data and is_uri(data):
        data = str(download_dataset(data, workspace, log))
    base = space.trial_config(extra={"data.dir": str(data)} if data else None)
    data_dir = resolve_dataset(base, workspace, progress=progress)
    pack = open_pack(data_dir, workspace, progress=progress)
    encoder = TextEncoder.load(base["encoder.path"], base["encoder.family"])
    pinned = {"data.dir": str(Path(data_dir).resolve()), "evaluator.seed": base.seed_for("evaluator"),
              "align.partition_seed": partition_seed(base)}
    log(f"prepare: dataset {pack.content_hash[:12]} ({len(pack)} clips), scoring evaluator")
    evaluator = train_or_load(pack, encoder, base, workspace, seed=pinned["evaluator.seed"], progress=progress)
    pinned["evaluator.sha"] = evaluator.sha
    log("prepare: val scorer (the scoring recipe without the val clips)")
    pinned["evaluator.val_sha"] = val_scorer(pack, encoder, base, workspace, scorer=evaluator, progress=progress).sha
    if base["gen.kind"] == "masked" or "gen.kind" in space.varied:  # the tokenizer every masked trial shares
        from mate.generate.tokenizer import train_or_load as tokenizer_for

        log("prepare: motion tokenizer")
        pinned["tokenizer.sha"] = tokenizer_for(pack, base, workspace, progress=progress, log=log).sha
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
    return pinned, pack.content_hash, base["encoder.path"]


def download_dataset(uri: str, workspace: Path, log: Callable[[str], None] = print) -> Path:
    """A dataset at a URI (`s3://…`), copied once into `<workspace>/data/remote-<hash>/` (the driver packs it)."""
    from mate.cache import content_hash, get_or_build
    from mate.storage import Storage

    storage = Storage(uri)  # the driver's check_data found objects there before Ray started

    def build(tmp: Path) -> None:
        log(f"prepare: downloading the dataset from {uri}")
        storage.download("", tmp)

    return get_or_build(workspace / "data" / f"remote-{content_hash(uri, 12)}", build)
