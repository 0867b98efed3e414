"""Where a sweep's trials may run: their GPU share on a cluster whose GPU workers start from zero, and whether that
share packs into the worker types the cluster can start.

On a cluster (`--address`, or a Ray Job) a trial asks for its GPU share whether or not a GPU node is up: the
autoscaler starts GPU workers only for resource requests it sees, so dropping the share because `cluster_resources()`
shows no GPU at submit time (always the case at zero workers) would run every trial on CPU forever. Only a local run
on a machine without a GPU falls back to CPU.

Packing is checked before any trial against the worker types the autoscaler may start (its config: the head's
`~/ray_bootstrap_config.yaml` after `ray up`, or `$MATE_CLUSTER_CONFIG`), else against the worker nodes that are up.
Ray packs trials by every resource at once: 0.5 GPU and 4 CPUs a trial on a 4-CPU, 1-GPU worker fits one trial, not
two, and half of every GPU idles; that is refused with the `--cpus-per-trial` that would pack.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mate.errors import UserError
from mate.sweep.private_api import HEAD_RESOURCE

CONFIG_ENV = "MATE_CLUSTER_CONFIG"
BOOTSTRAP = "~/ray_bootstrap_config.yaml"  # where `ray up` leaves the autoscaler's config on the head
FALLBACK = "no GPU in the cluster: trials run on CPU"


@dataclass(frozen=True)
class WorkerType:
    name: str
    cpus: float
    gpus: float


def trial_gpus(requested: float, on_cluster: bool, cluster_gpus: float, log: Callable[[str], None]) -> float:
    """The GPU share each trial asks Ray for."""
    if requested <= 0:
        return 0.0
    if cluster_gpus > 0:
        return requested
    if not on_cluster:
        log(f"sweep: {FALLBACK} (asked for {requested:g} GPU each)")
        return 0.0
    log(f"sweep: no GPU worker is up yet: trials ask for {requested:g} GPU each and wait for the autoscaler to start "
        "one (a cluster without GPU workers never runs them: pass --gpus-per-trial 0 there)")
    return requested


def config_worker_types(config: Mapping) -> list[WorkerType]:
    """The worker types of an autoscaler config (`available_node_types`, the head's type left out)."""
    head = config.get("head_node_type")
    out = []
    for name, spec in (config.get("available_node_types") or {}).items():
        if name == head or int((spec or {}).get("max_workers", 1) or 0) == 0:
            continue
        res = (spec or {}).get("resources") or {}
        out.append(WorkerType(name, float(res.get("CPU", 0)), float(res.get("GPU", 0))))
    return out


def node_worker_types(nodes: Iterable[Mapping]) -> list[WorkerType]:
    """The live worker nodes (`ray.nodes()`), one entry per distinct shape; the head is left out."""
    shapes = {}
    for n in nodes:
        res = n.get("Resources") or {}
        if not n.get("Alive") or HEAD_RESOURCE in res:
            continue
        shape = (float(res.get("CPU", 0)), float(res.get("GPU", 0)))
        shapes.setdefault(shape, WorkerType(f"node {n.get('NodeManagerAddress', '?')}", *shape))
    return list(shapes.values())


def cluster_worker_types() -> tuple[list[WorkerType], str]:
    """The worker types this cluster may run trials on, and where they were read from."""
    import ray
    import yaml

    path = Path(os.environ.get(CONFIG_ENV) or BOOTSTRAP).expanduser()
    if path.is_file():
        return config_worker_types(yaml.safe_load(path.read_text()) or {}), str(path)
    return node_worker_types(ray.nodes()), "the worker nodes that are up"


def per_node(cpus: float, gpus: float, worker: WorkerType) -> int:
    """How many trials of (cpus, gpus) Ray can place on one node of this type at once."""
    fits = [math.floor(worker.cpus / cpus + 1e-9) if cpus > 0 else math.inf]
    if gpus > 0:
        fits.append(math.floor(worker.gpus / gpus + 1e-9))
    n = min(fits)
    return 0 if n == math.inf else int(n)


def check_packing(cpus: float, gpus: float, workers: list[WorkerType], source: str) -> list[str]:
    """Refuse a trial shape no worker type can hold, or one whose CPUs leave part of every GPU idle; returns notes
    on the worker types that are fine but not used (GPU trials on CPU-only types)."""
    if not workers:
        return []
    hosts = [w for w in workers if per_node(cpus, gpus, w) > 0]
    what = f"{cpus:g} CPU{'s' if cpus != 1 else ''}" + (f" and {gpus:g} GPU" if gpus else "") + " a trial"
    if not hosts:
        shapes = ", ".join(f"{w.name} ({w.cpus:g} CPUs, {w.gpus:g} GPUs)" for w in workers)
        raise UserError(f"{what} fits on no worker type in {source}: {shapes}; lower --cpus-per-trial / "
                        "--gpus-per-trial (budget.cpus_per_trial / gpus_per_trial) or add a bigger worker type")
    if gpus > 0:
        for w in hosts:
            by_gpu = math.floor(w.gpus / gpus + 1e-9)
            held = per_node(cpus, gpus, w)
            if held < by_gpu:
                fit = math.floor(w.cpus / by_gpu)
                share = f"--gpus-per-trial {w.gpus / held:g}"  # the share that packs as many as the CPUs hold
                hint = f"--cpus-per-trial {fit} (budget.cpus_per_trial) or {share}" if fit >= 1 else share
                raise UserError(
                    f"{what} packs {by_gpu} trial(s) on a {w.name} worker by its {w.gpus:g} GPU(s), but its "
                    f"{w.cpus:g} CPUs hold only {held}: part of every GPU would idle; use {hint}")
    return [f"{w.name} ({w.cpus:g} CPUs, {w.gpus:g} GPUs) cannot hold {what}" for w in workers if w not in hosts]


def driver_threads(log: Callable[[str], None]) -> None:
    """A Ray Job's driver inherits one OpenMP thread from Ray's runner; its prepare stage (evaluators, tokenizer) then
    trains on one core of the head. Give it the machine's cores (the head runs no trials)."""
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if torch.get_num_threads() < cores:
        log(f"sweep: the driver's prepare stage trains on {cores} threads (it had {torch.get_num_threads()})")
        torch.set_num_threads(cores)
