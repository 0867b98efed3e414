"""A trial's GPU share and its packing, decided by the driver before any trial: kept on a cluster whose GPU workers
start from zero, dropped only by a local run without a GPU; a share whose CPUs would idle part of every GPU on a
worker type is refused, and the shipped GPU spaces pack on the shipped cluster configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mate.errors import UserError
from mate.sweep.placement import (FALLBACK, WorkerType, check_packing, config_worker_types, node_worker_types,
                                  per_node, trial_gpus)
from mate.sweep.space import load_space

REPO = Path(__file__).resolve().parents[2]
G5 = WorkerType("gpu_1x", 4, 1)


def test_a_cluster_keeps_the_gpu_share_before_any_gpu_worker_is_up():
    said = []
    assert trial_gpus(0.5, on_cluster=True, cluster_gpus=0, log=said.append) == 0.5
    assert said and FALLBACK not in said[0] and "autoscaler" in said[0]
    said.clear()
    assert trial_gpus(0.5, on_cluster=False, cluster_gpus=0, log=said.append) == 0.0
    assert said and FALLBACK in said[0]
    said.clear()
    assert trial_gpus(0.5, on_cluster=False, cluster_gpus=1, log=said.append) == 0.5 and not said
    assert trial_gpus(0.0, on_cluster=True, cluster_gpus=0, log=said.append) == 0.0 and not said


def test_packing_counts_every_resource():
    assert per_node(2, 0.5, G5) == 2 and per_node(4, 0.5, G5) == 1 and per_node(1, 0.25, G5) == 4
    assert per_node(1, 0.5, WorkerType("cpu", 8, 0)) == 0 and per_node(2, 0, WorkerType("cpu", 8, 0)) == 4


def test_cpus_that_idle_half_a_gpu_are_refused_with_the_share_that_packs():
    with pytest.raises(UserError, match=r"--cpus-per-trial 2\b") as err:
        check_packing(4, 0.5, [G5, WorkerType("gpu_4x", 48, 4)], "ray_cluster.yaml")
    assert "gpu_1x" in str(err.value) and "idle" in str(err.value)
    assert check_packing(2, 0.5, [G5, WorkerType("gpu_4x", 48, 4)], "ray_cluster.yaml") == []
    with pytest.raises(UserError, match=r"use --gpus-per-trial 1$"):  # no whole CPU count packs four: a bigger share
        check_packing(2, 0.25, [WorkerType("small", 2, 1)], "x.yaml")


def test_a_trial_no_worker_type_can_hold_is_refused_and_cpu_types_are_noted():
    with pytest.raises(UserError, match="fits on no worker type"):
        check_packing(8, 0.5, [G5], "x.yaml")
    notes = check_packing(2, 0.5, [G5, WorkerType("cpu_8x", 8, 0)], "x.yaml")
    assert len(notes) == 1 and "cpu_8x" in notes[0]
    assert check_packing(4, 0.5, [], "nothing") == []  # nothing known: nothing to refuse


def test_worker_types_come_from_the_autoscaler_config_or_the_live_workers():
    config = yaml.safe_load((REPO / "ray_cluster.yaml").read_text())
    types = {w.name: w for w in config_worker_types(config)}
    assert config["head_node_type"] not in types and types["gpu_1x"] == G5
    live = node_worker_types([
        {"Alive": True, "Resources": {"CPU": 0, "node:__internal_head__": 1}, "NodeManagerAddress": "h"},
        {"Alive": True, "Resources": {"CPU": 2, "GPU": 1}, "NodeManagerAddress": "a"},
        {"Alive": True, "Resources": {"CPU": 2, "GPU": 1}, "NodeManagerAddress": "b"},
        {"Alive": False, "Resources": {"CPU": 64, "GPU": 8}, "NodeManagerAddress": "gone"}])
    assert [(w.cpus, w.gpus) for w in live] == [(2.0, 1.0)]


def _kuberay_worker_types() -> list[WorkerType]:
    docs = [d for d in yaml.safe_load_all((REPO / "deploy" / "kuberay-rayjob.yaml").read_text()) if d]
    job = next(d for d in docs if d.get("kind") == "RayJob")
    out = []
    for group in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]:
        limits = group["template"]["spec"]["containers"][0]["resources"]["limits"]
        out.append(WorkerType(group["groupName"], float(limits["cpu"]), float(limits.get("nvidia.com/gpu", 0))))
    return out


@pytest.mark.parametrize("space, variant", [("mate_humanml3d.yaml", None), ("ablation_prior.yaml", "paper"),
                                            ("ablation_losses.yaml", "paper"), ("ablation_prototypes.yaml", "paper")])
def test_the_shipped_gpu_spaces_pack_on_the_shipped_clusters(space, variant):
    budget = load_space(REPO / "search_spaces" / space, variant).budget
    assert budget.gpus_per_trial > 0
    clusters = {"ray_cluster.yaml": config_worker_types(yaml.safe_load((REPO / "ray_cluster.yaml").read_text())),
                "kuberay-rayjob.yaml": _kuberay_worker_types()}
    for source, workers in clusters.items():
        assert check_packing(budget.cpus_per_trial, budget.gpus_per_trial, workers, source) == [], source


def test_a_job_drivers_prepare_stage_gets_the_machines_cores():
    import os

    import torch

    from mate.sweep.placement import driver_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)  # what a Ray Job's entrypoint inherits
        said = []
        driver_threads(said.append)
        assert torch.get_num_threads() == len(os.sched_getaffinity(0))
        assert (len(said) == 1) == (len(os.sched_getaffinity(0)) > 1)
    finally:
        torch.set_num_threads(before)
