"""The cluster path on a real two-node local Ray cluster (`ray start --head` + `ray start --address`, separate temp
dirs, one logical GPU each), an MLflow server and an S3-compatible server (moto) on 127.0.0.1, and a `tiny` sweep
submitted with `ray job submit --working-dir`: trials asking for 0.5 GPU pack two a GPU and spread over both nodes,
the prepared data is fetched once per node, the workers run the submitted source, checkpoints and results live in
the bucket, a sweep stopped mid-way resumes from there, and everything lands in the one MLflow server."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from mate.localnet import free_port, wait_http
from tests.raylocal import free_port_flags, stop_processes
from tests.sweep.conftest import GEN_LR, SIGMA

# the module's fixtures start a cluster and run a sweep twice (~4 min)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BUCKET = "mate-cluster-test"
BUDGET = {"num_samples": 4, "max_epochs": 4, "gpus_per_trial": 0.5, "max_concurrent": 4}


@pytest.fixture(scope="module")
def servers(s3_server, tmp_path_factory):
    """S3 (the session's moto) and an MLflow tracking server, both on 127.0.0.1; the bucket created through boto3."""
    root = tmp_path_factory.mktemp("servers")
    ml_port = free_port()
    env = {**os.environ, **s3_server["env"]}
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(ml_port),
                             "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'mlflow-server.db'}",
                             "--artifacts-destination", str(root / "mlartifacts")],
                            stdout=open(root / "mlflow.log", "w"), stderr=subprocess.STDOUT, env=env)
    try:
        wait_http(f"http://127.0.0.1:{ml_port}/health", 120)
        s3_server["client"].create_bucket(Bucket=BUCKET)
        yield {"env": env, "s3": s3_server["client"], "tracking": f"http://127.0.0.1:{ml_port}"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(servers, tmp_path_factory):
    """Head and worker as separate `ray start` processes with their own temp dirs and node caches."""
    root = tmp_path_factory.mktemp("cluster")
    port, dash = free_port(), free_port()
    env = {**servers["env"], "RAY_AUTH_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false",
           "RAY_JOB_STOP_WAIT_TIME_S": "60"}  # `ray job stop` lets the sweep save its state before a SIGKILL
    nodes, short = [], Path(tempfile.mkdtemp(prefix="mate-rt-", dir="/tmp"))  # Ray's socket paths must stay short
    for i, extra in enumerate((["--head", f"--port={port}", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                                "--include-dashboard=true"],
                               [f"--address=127.0.0.1:{port}"])):
        node_env = {**env, "MATE_NODE_CACHE": str(root / f"node{i}-cache")}
        (short / f"n{i}").mkdir()
        started = subprocess.run([str(BIN / "ray"), "start", *extra, "--node-ip-address=127.0.0.1", "--num-cpus=2",
                                  "--num-gpus=1", *free_port_flags(head=i == 0),
                                  f"--temp-dir={short / f'n{i}'}", "--disable-usage-stats"],
                                 env=node_env, capture_output=True, text=True, timeout=180)
        assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        nodes.append(node_env)
    try:
        yield {"env": env, "address": f"http://127.0.0.1:{dash}", "gcs": f"127.0.0.1:{port}", "root": root}
    finally:
        stop_processes(str(short), f"127.0.0.1:{port}")  # not `ray stop`: other Rays on this machine live on
        shutil.rmtree(short, ignore_errors=True)


def submit(cluster, servers, space: Path, ws: Path, data: Path, wait: bool = True) -> subprocess.Popen:
    cmd = [str(BIN / "ray"), "job", "submit", "--address", cluster["address"], "--working-dir", str(REPO),
           *([] if wait else ["--no-wait"]), "--", sys.executable, "jobs/sweep.py", str(space),
           "--workspace", str(ws), "--data", str(data), "--storage", f"s3://{BUCKET}/mate",
           "--tracking-uri", servers["tracking"], "--gpus-per-trial", "0.5", "--quiet"]
    return subprocess.run(cmd, env=cluster["env"], capture_output=True, text=True, timeout=600)


def s3_keys(servers, prefix: str) -> list[str]:
    pages = servers["s3"].get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def swept(cluster, servers, tiny_corpus, tmp_path_factory, tiny_space):
    """The sweep submitted as a job, stopped once its first checkpoint is in the bucket, submitted again (fresh
    trials of the first job are held after their first epoch until then)."""
    root = tmp_path_factory.mktemp("job")
    space, released = root / "cluster.yaml", root / "released"
    # the first job's trials wait after one epoch: the stop lands mid-way
    tiny_space(space, "clustersweep", params={**SIGMA, **GEN_LR}, constants={"debug.hold_file": str(released)},
               **BUDGET)
    ws = root / "head-ws"
    first = submit(cluster, servers, space, ws, tiny_corpus, wait=False)
    assert first.returncode == 0, first.stderr
    job_id = re.search(r"raysubmit_[A-Za-z0-9]+", first.stdout).group(0)  # the CLI wraps it in ANSI codes
    deadline = time.time() + 300
    while not any("/checkpoint_" in k for k in s3_keys(servers, "mate/clustersweep/tune/")):
        if time.time() > deadline:
            logs = subprocess.run([str(BIN / "ray"), "job", "logs", "--address", cluster["address"], job_id],
                                  env=cluster["env"], capture_output=True, text=True, timeout=60)
            pytest.fail(f"no checkpoint reached the bucket; the job said:\n{logs.stdout[-5000:]}")
        time.sleep(0.5)
    stop = subprocess.run([str(BIN / "ray"), "job", "stop", "--address", cluster["address"], job_id],
                          env=cluster["env"], capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0, stop.stdout[-2000:] + stop.stderr[-2000:]
    released.touch()
    logs = subprocess.run([str(BIN / "ray"), "job", "logs", "--address", cluster["address"], job_id],
                          env=cluster["env"], capture_output=True, text=True, timeout=60)
    (root / "first-job.log").write_text(logs.stdout + logs.stderr)  # for a failure's post-mortem
    second = submit(cluster, servers, space, ws, tiny_corpus)
    (root / "second-job.log").write_text(second.stdout + second.stderr)
    return {"second": second, "ws": ws}


def test_the_stopped_sweep_resumes_from_the_bucket_and_finishes_every_trial_once(swept, servers):
    second = swept["second"]
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert f"restoring run-1 (s3://{BUCKET}/mate/clustersweep/tune/run-1)" in second.stdout, second.stdout[-5000:]
    keys = s3_keys(servers, "mate/clustersweep/")
    assert any(k.endswith("/run/metrics.json") for k in keys) and any("/checkpoint_" in k for k in keys)
    assert not [k for k in keys if "/run/checkpoint/" in k]  # the generator's state goes up once, as Tune's checkpoint
    assert "mate/clustersweep/best.yaml" in keys and "mate/clustersweep/results.csv" in keys
    assert any(k.startswith("mate/prepared/") and k.endswith(".tar") for k in s3_keys(servers, "mate/prepared/"))


def test_runs_land_in_the_mlflow_server_once_each(swept, servers):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(servers["tracking"])
    exp = client.get_experiment_by_name("clustersweep")
    runs = client.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(children) == 4 and len({r.data.tags["trial_id"] for r in children}) == 4
    assert all(r.info.status == "FINISHED" for r in runs), [(r.data.tags.get("trial_id"), r.info.status) for r in runs]
    assert all("val/eval/r_precision_top3" in r.data.metrics for r in children)


def _processes(servers, tmp_path) -> list[dict]:
    out = []
    for key in s3_keys(servers, "mate/clustersweep/tune/"):
        if key.endswith("/run/process.json"):
            out.append(json.loads(servers["s3"].get_object(Bucket=BUCKET, Key=key)["Body"].read()))
    return out


def test_trials_pack_two_a_gpu_spread_over_both_nodes_and_run_the_submitted_code(swept, servers, tmp_path):
    procs = _processes(servers, tmp_path)
    assert len(procs) == 4
    assert len({p["node_id"] for p in procs}) == 2
    assert all(p["gpu_ids"] and len(p["gpu_ids"]) == 1 for p in procs)  # 0.5 GPU: a share of one device
    assert all(str(REPO) not in p["mate_file"] for p in procs), [p["mate_file"] for p in procs]
    packed = False
    for a in procs:
        for b in procs:
            if a is not b and a["node_id"] == b["node_id"] and a["gpu_ids"] == b["gpu_ids"]:
                packed |= a["started"] < b["reported"] and b["started"] < a["reported"]
    assert packed, "no two trials shared a node's GPU at the same time"


def test_the_prepared_data_is_fetched_once_per_node(swept, cluster):
    fetches = [json.loads(line) for path in cluster["root"].glob("node*-cache/*/fetches.jsonl")
               for line in path.read_text().splitlines()]
    nodes = [f["node_id"] for f in fetches]
    assert len(set(nodes)) == 2 and len(nodes) == 2, fetches


def test_bad_cluster_input_is_one_message_before_any_trial(tmp_path, capsys, servers, monkeypatch, tiny_space):
    from mate.cli import main

    space = tmp_path / "s.yaml"
    tiny_space(space, "clustersweep", params={**SIGMA, **GEN_LR}, **BUDGET)
    for env, value in servers["env"].items():
        monkeypatch.setenv(env, value)
    cases = [(["--address", f"127.0.0.1:{free_port()}"], "no Ray cluster reachable"),
             (["--storage", "s3://no-such-bucket-here/x"], "cannot write there"),
             (["--data", f"s3://{BUCKET}/no/such/dataset"], "nothing there"),
             (["--data", str(tmp_path / "missing")], "no such dataset folder"),
             (["--gpus-per-trial", "1.5"], "a fraction of one GPU")]
    for args, message in cases:
        assert main(["sweep", str(space), "--workspace", str(tmp_path / "ws"), "--quiet", *args]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (args, err)
        assert not (tmp_path / "ws" / "sweeps" / "clustersweep" / "tune").exists()
