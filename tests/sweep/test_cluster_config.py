"""ray_cluster.yaml and deploy/kuberay-rayjob.yaml only run on a real cloud, where a mistake costs a launch and its
bill. These tests check them offline: Ray's own validation, as `ray up` runs it (defaults filled in, then the JSON
schema), and the project's rules: GPU workers that scale from zero, every install pinned by CI's constraints file,
MLflow and the dashboard on loopback, token authentication on, no secrets, storage on S3."""

from __future__ import annotations

import copy
import os
import re
import shlex
from pathlib import Path

import jsonschema
import pytest
import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
CLUSTER = REPO / "ray_cluster.yaml"
RAYJOB = REPO / "deploy" / "kuberay-rayjob.yaml"
CONSTRAINTS = REPO / "constraints.txt"

COMMAND_KEYS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                "head_start_ray_commands", "worker_start_ray_commands")
SEPARATORS = {"&&", "||", ";", "|", "&", ";;", "(", ")"}
# pip options that take a value (the value is not a package)
PIP_VALUE_OPTIONS = {"-c", "--constraint", "-r", "--requirement", "-i", "--index-url", "--extra-index-url", "-f",
                     "--find-links", "-t", "--target", "--prefix", "--root", "--src", "--upgrade-strategy",
                     "--platform", "--python-version", "--implementation", "--abi", "--cache-dir", "--log",
                     "--timeout", "--retries", "--trusted-host", "--proxy", "--cert", "--client-cert"}
LOOPBACK = {"127.0.0.1", "localhost"}
SECRETS = {
    "AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "AWS secret access key": r"(?i)aws_secret_access_key",
    "API key (sk-...)": r"\bsk-[A-Za-z0-9_-]{20,}",
    "OPENAI_API_KEY with a value": r"OPENAI_API_KEY\s*=\s*\S",
    "Ray token with a value": r"RAY_AUTH_TOKEN\s*=\s*\S",
    "Ray token auth switched off": r"(?i)RAY_AUTH_MODE\s*[=:]\s*[\"']?disabled",
}


# --- helpers ---------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load(CLUSTER.read_text())


@pytest.fixture(scope="module")
def rayjob() -> dict:
    docs = [d for d in yaml.safe_load_all(RAYJOB.read_text()) if d]
    jobs = [d for d in docs if d.get("kind") == "RayJob"]
    assert len(jobs) == 1, f"{RAYJOB.name}: expected one RayJob document, found kinds {[d.get('kind') for d in docs]}"
    return jobs[0]


def ray_validate(config: dict) -> dict:
    """What `ray up` does before it touches the cloud: fill in the provider's defaults, then validate (offline)."""
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def commands(config: dict) -> list[str]:
    out = [c for key in COMMAND_KEYS for c in config.get(key) or []]
    for node_type in config.get("available_node_types", {}).values():
        out += [c for key in ("initialization_commands", "worker_setup_commands") for c in node_type.get(key) or []]
    return out


def shell_commands(cmd: str) -> list[list[str]]:
    """A shell line split into its simple commands (at &&, ||, ;, |, &), each as words without leading `VAR=value`,
    `nohup` or `setsid`."""
    lexer = shlex.shlex(cmd, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    parts, current = [], []
    for token in lexer:
        if token in SEPARATORS:
            parts, current = parts + [current], []
        elif current or not (token in ("nohup", "setsid") or re.fullmatch(r"[A-Za-z_]\w*=.*", token)):
            current.append(token)
    return [p for p in parts + [current] if p]


def pip_installs(cmd: str) -> list[list[str]]:
    """The arguments after `install` of every `pip install` / `python -m pip install` in a shell line."""
    out = []
    for words in shell_commands(cmd):
        for i in range(len(words) - 1):
            if re.fullmatch(r"pip[0-9.]*", os.path.basename(words[i])) and words[i + 1] == "install":
                out.append(words[i + 2:])
                break
    return out


def pip_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(packages, constraint files) of one pip install; an editable path counts as a package."""
    packages, constraints = [], []
    it = iter(args)
    for arg in it:
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in ("-c", "--constraint"):
            constraints.append(value if eq else next(it))
        elif name in ("-e", "--editable"):
            packages.append(value if eq else next(it))
        elif name in PIP_VALUE_OPTIONS:
            if name in ("-r", "--requirement"):
                packages.append("-r " + (value if eq else next(it)))
            elif not eq:
                next(it)
        elif not arg.startswith("-"):
            packages.append(arg)
    return packages, constraints


def unpinned(cmd: str) -> list[str]:
    """Packages a command installs without a pin: neither a constraints file nor `==` on every package."""
    bad = []
    for args in pip_installs(cmd):
        packages, constraints = pip_args(args)
        if not constraints:
            bad += [p for p in packages if "==" not in p or p.startswith("-r ")]
    return bad


def pins(path: Path = CONSTRAINTS) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{path.name}: {line!r} is not an exact pin"
            out[canonicalize_name(req.name)] = spec.version
    return out


def remote_to_local(remote: str, file_mounts: dict[str, str]) -> Path | None:
    """Where a path on a node comes from on the machine that runs `ray up` (from the repo root), or None."""
    remote = re.sub(r"^\$(HOME|\{HOME\})/", "~/", remote).rstrip("/")
    for mount, local in file_mounts.items():
        mount = mount.rstrip("/")
        if remote == mount or remote.startswith(mount + "/"):
            base = Path(os.path.expanduser(local))
            return ((base if base.is_absolute() else REPO / base) / remote[len(mount):].lstrip("/")).resolve()
    return None


def option(words: list[str], flag: str) -> str | None:
    for i, w in enumerate(words):
        if w == flag and i + 1 < len(words):
            return words[i + 1]
        if w.startswith(flag + "="):
            return w.split("=", 1)[1]
    return None


def containers(pod_template: dict) -> list[dict]:
    return pod_template.get("spec", {}).get("containers", [])


# --- Ray's own validation --------------------------------------------------------------------------------------------

def test_ray_accepts_the_cluster_config(cluster):
    prepared = ray_validate(cluster)
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("breakage", [
    pytest.param(lambda c: c.update(worker_nodes_max=4), id="unknown top-level key"),
    pytest.param(lambda c: c.update(max_workers="six"), id="max_workers not an integer"),
    pytest.param(lambda c: c["available_node_types"]["gpu_1x"].update(min_worker=0), id="typo in a node type"),
    pytest.param(lambda c: c["available_node_types"]["gpu_1x"]["resources"].update(GPU=0.5), id="fractional GPU"),
    pytest.param(lambda c: c["available_node_types"]["gpu_4x"].pop("resources"), id="node type without resources"),
    pytest.param(lambda c: c.update(head_node_type="cpu_head"), id="head type not defined"),
])
def test_ray_rejects_a_broken_config(cluster, breakage):
    broken = copy.deepcopy(cluster)
    breakage(broken)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        ray_validate(broken)


# --- project rules ---------------------------------------------------------------------------------------------------

def test_gpu_workers_scale_from_zero(cluster):
    node_types = cluster["available_node_types"]
    head = node_types[cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0, "the head (driver, MLflow) should not offer GPUs to trials"
    gpu = {name: t for name, t in node_types.items() if t["resources"].get("GPU", 0) >= 1}
    assert gpu, "no worker type declares resources.GPU >= 1"
    for name, t in gpu.items():
        assert t.get("min_workers", 0) == 0, f"{name}: min_workers must be 0 (idle GPUs cost money)"
        assert t.get("max_workers", 0) >= 1, f"{name}: max_workers must allow at least one node"
        assert t["resources"].get("CPU", 0) >= 1, f"{name}: declare its CPUs (trials ask for CPUs too)"
    assert cluster.get("idle_timeout_minutes", 0) > 0


@pytest.mark.parametrize("cmd, bad", [
    ("pip install boto3", ["boto3"]),
    ("pip install -U 'ray[default]'", ["ray[default]"]),
    ("cd x && python -m pip install -r requirements.txt", ["-r requirements.txt"]),
    ("pip install torch==2.13.0 numpy", ["numpy"]),
    ("pip install -q torch==2.13.0+cpu --extra-index-url https://example.org/whl", []),
    ("pip install -c ~/mate/constraints.txt -e \"$HOME/mate[cluster]\"", []),
    ("which ray || pip install --constraint=c.txt ray", []),
])
def test_the_pin_check_itself(cmd, bad):
    assert unpinned(cmd) == bad


def test_every_pip_install_is_pinned(cluster):
    """Also after Ray fills in its defaults: a command list left out is replaced by Ray's, which installs unpinned."""
    for config in (cluster, ray_validate(cluster)):
        installs = [c for c in commands(config) if pip_installs(c)]
        assert installs, "the cluster installs nothing: setup commands missing"
        for cmd in installs:
            assert not unpinned(cmd), f"unpinned install {unpinned(cmd)} in: {cmd}"


def test_installs_use_ci_constraints_file(cluster):
    used = [c for cmd in commands(cluster) for args in pip_installs(cmd) for c in pip_args(args)[1]]
    assert used, "no pip install uses a constraints file"
    for remote in used:
        local = remote_to_local(remote, cluster.get("file_mounts", {}))
        assert local == CONSTRAINTS.resolve(), f"-c {remote} is not the repo's constraints.txt via file_mounts"
    setup_sh = [c for line in (REPO / "setup.sh").read_text().splitlines() if not line.lstrip().startswith("#")
                for args in pip_installs(line) for c in pip_args(args)[1]]
    assert setup_sh and all((REPO / c).resolve() == CONSTRAINTS.resolve() for c in setup_sh), setup_sh


def test_versions_agree_with_constraints(cluster):
    """The pinned torch (CPU or CUDA build) and the Ray image are the versions CI tests."""
    pinned = pins()
    torch = [p for cmd in commands(cluster) for args in pip_installs(cmd) for p in pip_args(args)[0]
             if p.startswith("torch==")]
    assert torch, "torch is not installed first and pinned on the nodes"
    assert {p.split("==")[1].split("+")[0] for p in torch} == {pinned["torch"]}, torch
    images = [v for k, v in cluster.get("docker", {}).items() if k.endswith("image")]
    assert images, "no docker image: the nodes' Ray version would be whatever the AMI has"
    for image in images:
        assert re.fullmatch(rf"rayproject/ray:{re.escape(pinned['ray'])}-py3\d+-(cpu|gpu|cu\d+)", image), image


def test_cluster_extra_is_pinned_by_constraints():
    """The nodes install `.[cluster]` from constraints.txt: the extra must exist and every package in it be pinned."""
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
    assert "cluster" in extras, "pyproject.toml has no `cluster` extra, which the cluster's setup commands install"
    missing = [r for r in extras["cluster"] if canonicalize_name(Requirement(r).name) not in pins()]
    assert not missing, f"not pinned in constraints.txt: {missing}"


def test_mlflow_and_dashboard_bound_to_loopback(cluster, rayjob):
    for path in (CLUSTER, RAYJOB):
        assert "0.0.0.0" not in path.read_text(), f"{path.name} binds something to every interface"
    servers = [w for cmd in commands(cluster) for w in shell_commands(cmd) if w[:2] == ["mlflow", "server"]]
    servers += [c["command"] for c in containers(rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"])
                if c.get("command", [])[:2] == ["mlflow", "server"]]
    assert len(servers) == 2, "expected one MLflow server in each file"
    for words in servers:
        assert option(words, "--host") in LOOPBACK, words
    heads = [w for cmd in commands(cluster) for w in shell_commands(cmd) if w[:2] == ["ray", "start"] and "--head" in w]
    assert heads and all(option(w, "--dashboard-host") in LOOPBACK for w in heads), heads


def test_token_auth_stays_on(cluster, rayjob):
    starts = [cmd for cmd in commands(cluster) if any(w[:2] == ["ray", "start"] for w in shell_commands(cmd))]
    assert len(starts) >= 2, "expected `ray start` on the head and on workers"
    for cmd in starts:
        assert re.search(r"\bRAY_AUTH_MODE=token\b", cmd), f"ray starts without token auth: {cmd}"
    assert remote_to_local("~/.ray/auth_token", cluster["file_mounts"]), "the token does not reach the nodes"
    assert rayjob["spec"]["rayClusterSpec"].get("authOptions", {}).get("mode") == "token"


@pytest.mark.parametrize("path", [CLUSTER, RAYJOB], ids=lambda p: p.name)
def test_no_secrets(path):
    text = path.read_text()
    found = {what: m.group(0) for what, rx in SECRETS.items() if (m := re.search(rx, text))}
    assert not found, f"{path.name}: {found}"


@pytest.mark.parametrize("text", [
    "aws_access_key_id = " + "AKIA" + "ABCDEFGHIJKLMNOP",
    "AWS_SECRET_ACCESS_KEY: x",
    "key: sk-" + "a1" * 12,
    "export OPENAI_API_KEY=$OPENAI_API_KEY",
    "env: {RAY_AUTH_MODE: disabled}",
])
def test_the_secret_check_itself(text):
    assert any(re.search(rx, text) for rx in SECRETS.values())


def test_storage_is_s3(cluster, rayjob):
    texts = {p.name: p.read_text() for p in (CLUSTER, RAYJOB)}
    for name, text in texts.items():
        storage = re.findall(r"--storage[ =](\S+)", text)
        assert storage and all(s.startswith("s3://") for s in storage), f"{name}: --storage {storage}"
    servers = [w for cmd in commands(cluster) for w in shell_commands(cmd) if w[:2] == ["mlflow", "server"]]
    servers += [c["command"] for c in containers(rayjob["spec"]["rayClusterSpec"]["headGroupSpec"]["template"])
                if c.get("command", [])[:2] == ["mlflow", "server"]]
    for words in servers:
        assert (option(words, "--artifacts-destination") or "").startswith("s3://"), words


# --- KubeRay ---------------------------------------------------------------------------------------------------------

def test_rayjob_runs_the_sweep_on_gpu_workers(rayjob):
    words = shlex.split(rayjob["spec"]["entrypoint"])
    assert words[:2] == ["python", "jobs/sweep.py"], words
    assert (REPO / words[2]).is_file(), f"the entrypoint's search space {words[2]} is not in the repo"
    spec = rayjob["spec"]["rayClusterSpec"]
    assert spec["rayVersion"] == pins()["ray"]
    gpu_groups = [g for g in spec.get("workerGroupSpecs", []) for c in containers(g["template"])
                  if int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0)) >= 1]
    assert gpu_groups, "no worker group with an nvidia.com/gpu limit"
    assert all(g.get("minReplicas", 0) == 0 for g in gpu_groups), "GPU worker groups should scale from zero"
