"""GPU trials on a cluster whose GPU workers scale from zero, on Ray's own autoscaler with its `fake_multinode`
provider (what `ray.cluster_utils.AutoscalingCluster` drives; the Ray wheel lacks the example config it reads, and
its `start()` runs `ray stop --force`, so the config is written here): a head that offers Ray no CPU and no GPU, a
GPU worker type with `min_workers: 0`, everything on 127.0.0.1. A `tiny` sweep submitted as a Ray Job with
`--gpus-per-trial 0.5` must make the autoscaler start workers, run every trial on one of them (two a logical GPU,
none on the head) and never fall back to CPU; the prepare stage's trainings run as a task on a GPU worker too.

The job is submitted without `--working-dir`: the fake workers share the head's session folder, and Ray's
working_dir plugin unpacks the package with `overwrite=True` (`shutil.rmtree` first) on each node's first use, so a
second worker node's start deletes the folder the first node's trial processes run in (`os.getcwd()` then raises
FileNotFoundError). That is the fake provider's shared folder, not a defect real nodes (one disk each) can meet;
the two-node test (separate temp dirs) submits with `--working-dir`. Our `py_modules` upload unpacks without
overwrite, so the submitted `mate` still reaches the workers here."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from mate.localnet import free_port, wait_http
from mate.sweep.placement import FALLBACK
from tests.raylocal import free_port_flags, stop_processes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HEAD = "ray.head.default"  # the type the fake provider tags its head with: another name makes it launch a "head"
BUDGET = {"num_samples": 4, "max_epochs": 2, "gpus_per_trial": 0.5, "max_concurrent": 4}
WORKER = {"resources": {"CPU": 2, "GPU": 1}, "node_config": {}, "min_workers": 0, "max_workers": 2}


def provider_config(gcs: str) -> dict:
    """An autoscaler config for the fake provider whose workers join the head's GCS on the loopback."""
    empty = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
             "head_start_ray_commands", "worker_start_ray_commands", "cluster_synced_files", "rsync_exclude",
             "rsync_filter")
    return {"cluster_name": "mate-autoscale-test", "max_workers": 2, "upscaling_speed": 1.0,
            "idle_timeout_minutes": 5, "head_node_type": HEAD, "auth": {}, "docker": {}, "file_mounts": {},
            "file_mounts_sync_continuously": False, **{k: [] for k in empty},
            "provider": {"type": "fake_multinode", "gcs_address": gcs, "use_node_id_as_ip": True,
                         "disable_node_updaters": True, "disable_launch_config_check": True},
            "available_node_types": {HEAD: {"resources": {"CPU": 0, "GPU": 0}, "node_config": {}, "max_workers": 0},
                                     "gpu_worker": WORKER}}


def ray_cli(env, *args, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "ray"), *args], env=env, capture_output=True, text=True, timeout=timeout)


def nodes(cluster) -> list[dict]:
    out = ray_cli(cluster["env"], "list", "nodes", "--address", cluster["gcs"], "--format", "json", "--detail")
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("autoscale")
    short = Path(tempfile.mkdtemp(prefix="mate-as-", dir="/tmp"))  # Ray's socket paths must stay short
    port, dash = free_port(), free_port()
    gcs = f"127.0.0.1:{port}"
    config = root / "autoscaler.yaml"
    config.write_text(yaml.safe_dump(provider_config(gcs)))
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false", "RAY_FAKE_CLUSTER": "1",
           "AUTOSCALER_UPDATE_INTERVAL_S": "1", "MATE_NODE_CACHE": str(root / "node-cache"),
           "MATE_CLUSTER_CONFIG": str(config),  # the driver checks packing against the autoscaler's worker types
           # Ray's switch for single-machine clusters: every node address (the fake workers' too) is 127.0.0.1
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    started = ray_cli(env, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=0",
                      "--num-gpus=0", f"--autoscaling-config={config}", f"--temp-dir={short}",
                      "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}", "--include-dashboard=true",
                      "--disable-usage-stats", *free_port_flags(head=True), timeout=180)
    try:
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        wait_http(f"http://127.0.0.1:{dash}/api/version", 120)
        yield {"env": env, "gcs": gcs, "address": f"http://127.0.0.1:{dash}", "root": root}
    finally:
        stop_processes(str(short), gcs)


@pytest.fixture(scope="module")
def swept(cluster, tiny_corpus, tiny_space):
    before = nodes(cluster)
    space = cluster["root"] / "autoscale.yaml"
    tiny_space(space, "autoscale", **BUDGET)
    cmd = ["job", "submit", "--address", cluster["address"], "--", sys.executable, str(REPO / "jobs" / "sweep.py"),
           str(space), "--workspace", str(cluster["root"] / "head-ws"), "--data", str(tiny_corpus),
           "--storage", str(cluster["root"] / "store"), "--gpus-per-trial", "0.5", "--quiet"]
    deadline = time.time() + 120
    while True:  # the head's job agent registers a few seconds after `ray start` returns
        job = ray_cli(cluster["env"], *cmd, timeout=540)
        if "No available agent" not in job.stdout + job.stderr or time.time() > deadline:
            break
        time.sleep(2)
    (cluster["root"] / "job.log").write_text(job.stdout + job.stderr)
    procs = [json.loads(p.read_text()) for p in (cluster["root"] / "store").glob("autoscale/tune/run-*/*/run/"
                                                                                  "process.json")]
    return {"job": job, "before": before, "after": nodes(cluster), "procs": procs}


def test_the_autoscaler_starts_gpu_workers_and_every_trial_runs_on_one(swept):
    job = swept["job"]
    assert job.returncode == 0, job.stdout[-5000:] + job.stderr[-3000:]
    assert FALLBACK not in job.stdout and "no GPU worker is up yet" in job.stdout, job.stdout[-3000:]
    assert [n["is_head_node"] for n in swept["before"]] == [True]  # no worker before the sweep asked for GPUs
    head = swept["before"][0]["node_id"]
    workers = {n["node_id"] for n in swept["after"] if not n["is_head_node"]}
    assert workers, swept["after"]
    procs = swept["procs"]
    assert len(procs) == 4, procs
    assert all(p["node_id"] in workers and p["node_id"] != head for p in procs), (head, workers, procs)
    assert all(len(p["gpu_ids"]) == 1 and p["cuda_visible_devices"] == p["gpu_ids"][0] for p in procs), procs
    prepared = re.search(r"prepare: ran on node (\w+) \(GPU ids \['(\d+)'\]\)", job.stdout)
    assert prepared and prepared.group(1) in workers, job.stdout[-3000:]  # the trainings ran on a GPU worker too


def test_two_trials_share_each_logical_gpu(swept):
    procs = swept["procs"]
    shared = [(a, b) for i, a in enumerate(procs) for b in procs[i + 1:]
              if (a["node_id"], a["gpu_ids"]) == (b["node_id"], b["gpu_ids"])
              and a["started"] < b["reported"] and b["started"] < a["reported"]]
    assert shared, "no two trials ran on one worker's GPU at the same time"
    assert len({p["node_id"] for p in procs}) <= 2  # two a node: four trials need at most the two workers allowed


def test_a_share_whose_cpus_would_idle_the_gpu_is_refused_before_any_trial(cluster, tiny_corpus, tiny_space):
    """2 CPUs and 0.5 GPU a trial on the 2-CPU, 1-GPU worker type: two a GPU by the GPU, one by the CPUs."""
    space = cluster["root"] / "idle.yaml"
    tiny_space(space, "idle", **{**BUDGET, "cpus_per_trial": 2})
    job = ray_cli(cluster["env"], "job", "submit", "--address", cluster["address"], "--", sys.executable,
                  str(REPO / "jobs" / "sweep.py"), str(space), "--workspace", str(cluster["root"] / "head-ws"),
                  "--data", str(tiny_corpus), "--storage", str(cluster["root"] / "store"), "--quiet", timeout=300)
    out = job.stdout + job.stderr
    refusal = "hold only 1: part of every GPU would idle; use --cpus-per-trial 1"
    assert job.returncode != 0 and refusal in out, out[-3000:]
    assert "prepare:" not in out and not (cluster["root"] / "store" / "idle").exists()
