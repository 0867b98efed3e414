"""Shipping the prepare stage's outputs to every node (issue 14): a tar on shared storage vs Ray's object store.

    python bench/ship_bench.py [--sizes-mb 40 400] [--repeats 3] [--out DIR]

`mate.sweep.nodes` publishes the bundle as one tar on `--storage` and fetches it once per node; its docstring argues
that the object store would pin the bundle in the head's memory for the sweep's whole life and lose it with the
driver. This measures that argument instead of assuming it, on a real two-node local Ray cluster (`ray start --head`
+ `ray start --address`, one CPU each) with an S3-compatible server (moto) on 127.0.0.1 as the storage.

The bundle is random (incompressible) bytes in a few files laid out as a pack entry of a workspace's cache (40 MB is
the bench profile's real bundle; 400 MB points towards a HumanML3D pack of GBs). Per size and repeat:

- tar: `mate.sweep.nodes.publish` (tar + `Storage.upload`) under a new key, then `fetch` (download + extract) in a
  task pinned to each node; once on S3 (moto), once on a local folder, which stands in for NFS and shows the
  mechanism's own cost (moto reads the whole object for every ranged GET, and `Storage.download` asks one per MiB:
  its fetch time grows with the square of the size, which real S3 does not do);
- object store: the driver `ray.put`s the same tar's bytes (a uint8 array: zero-copy reads), then a task pinned to
  each node `ray.get`s it and writes + extracts it to a node-local folder.

Both nodes fetch at once, as the first trials of a sweep do. The head's object store use is read from the raylet's
`GetNodeStats` (`ray._private.internal_api.node_stats`, what `ray memory --stats-only` reports). Whether a bundle
outlives its driver is checked once per size: a second driver puts and publishes, exits, and this one then tries to
get its object and to find its tar. Both nodes share this machine's CPUs, disk and loopback: the figures are
indicative, the comparison between arms within one run is what matters.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from mate.localnet import free_port, wait_http
from mate.storage import Storage

BIN = Path(sys.executable).parent
BUCKET = "mate-ship-bench"
FILES = 4  # files per bundle
CHUNK = 8 << 20
ARMS = {"s3": "tar on S3 (moto)", "local": "tar on a local folder (NFS stand-in)", "object": "Ray object store"}


def start_node(args: list[str], log: Path) -> subprocess.Popen:
    """`ray start --block` in a session of its own: its raylet, GCS and workers are one process group that
    `stop_nodes` can end without `ray stop`, which would take every other Ray cluster on the machine with it."""
    proc = subprocess.Popen([str(BIN / "ray"), "start", *args, "--block"], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env=os.environ, start_new_session=True)
    deadline = time.time() + 180
    while "Ray runtime started" not in log.read_text():
        if proc.poll() is not None or time.time() > deadline:
            stop_nodes([proc], log.parent)
            raise RuntimeError(f"ray start failed:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    return proc


def stop_nodes(procs: list[subprocess.Popen], temp_root: Path) -> None:
    """SIGTERM, then SIGKILL, to the process groups started here, then to any leftover process of these nodes
    (whose command line names their temp dir); nothing else is touched."""
    import signal

    for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, sig)
        deadline = time.time() + wait
        while any(p.poll() is None for p in procs) and time.time() < deadline:
            time.sleep(0.2)
    import importlib

    import ray  # noqa: F401 - puts its vendored psutil on the path

    psutil = importlib.import_module("psutil")

    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] != os.getpid() and str(temp_root) in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                proc.kill()


def make_bundle(root: Path, size_mb: int) -> tuple[Path, Path, Path]:
    """A workspace holding one pack entry of `size_mb` MB of random bytes, and a (near-empty) dataset folder."""
    ws, data = root / "ws", root / "data"
    pack = ws / "cache" / "packs" / "bench"
    pack.mkdir(parents=True)
    per_file = size_mb * 1_000_000 // FILES
    for i in range(FILES):
        with open(pack / f"part{i}.bin", "wb") as f:
            left = per_file
            while left:
                n = min(left, CHUNK)
                f.write(os.urandom(n))
                left -= n
    (pack / "meta.json").write_text(json.dumps({"bench": True}))
    data.mkdir()
    (data / "train.txt").write_text("000001\n")
    return ws, pack, data


def store_bytes() -> dict[str, int]:
    """Object store bytes in use, per node ('head', 'worker'), from each raylet's node stats."""
    import ray
    from ray._private.internal_api import node_stats

    out = {}
    for node in ray.nodes():
        if node["Alive"]:
            stats = node_stats(node["NodeManagerAddress"], node["NodeManagerPort"], include_memory_info=False)
            role = "head" if "node:__internal_head__" in node["Resources"] else "worker"
            out[role] = int(stats.store_stats.object_store_bytes_used)
    return out


def on_node(fn, node_id: str):
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return ray.remote(num_cpus=1, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False))(fn)


def warm(uri: str) -> str:
    import pyarrow.fs  # noqa: F401
    import ray

    import mate.data.pack  # noqa: F401

    Storage(uri).is_file("warm-up")  # the AWS SDK's start-up, once per worker
    return ray.get_runtime_context().get_node_id()


def tar_fetch(shipped: dict, root: str) -> dict:
    import ray

    from mate.sweep.nodes import fetch

    node_id = ray.get_runtime_context().get_node_id()
    t = time.perf_counter()
    ws, _ = fetch(shipped, node_id, Path(root))
    return {"node_id": node_id, "seconds": time.perf_counter() - t, "ok": (ws / "cache" / "packs").is_dir()}


def object_fetch(refs: list, root: str, key: str) -> dict:
    import tarfile

    import ray

    node_id = ray.get_runtime_context().get_node_id()
    folder = Path(root) / node_id / key
    t = time.perf_counter()
    arr = ray.get(refs[0])
    got = time.perf_counter() - t
    folder.mkdir(parents=True)
    with open(folder.parent / f"{key}.tar", "wb") as f:
        f.write(memoryview(arr))
    del arr
    with tarfile.open(folder.parent / f"{key}.tar") as tar:
        tar.extractall(folder, filter="data")
    (folder.parent / f"{key}.tar").unlink()
    return {"node_id": node_id, "seconds": time.perf_counter() - t, "get_seconds": got,
            "ok": (folder / "ws" / "cache" / "packs").is_dir()}


class TimedStorage(Storage):
    """`mate.storage.Storage` whose `upload` is timed, so publish's tar build and upload can be told apart."""

    upload_s = 0.0

    def upload(self, local, rel):
        t = time.perf_counter()
        super().upload(local, rel)
        self.upload_s = time.perf_counter() - t


def tar_arm(uri: str, ws: Path, pack: Path, data: Path, nodes: dict[str, str], fetch_root: Path) -> tuple[dict, Path]:
    """publish (tar + upload) under a new key, then `fetch` on both nodes at once; returns the row and the tar."""
    import ray

    from mate.sweep.nodes import publish

    dataset_hash = f"{pack.name.split('-')[0]}-{uuid.uuid4().hex[:8]}"
    pack = pack.rename(pack.with_name(dataset_hash))  # a new key: publish builds and uploads, fetch downloads
    try:
        storage = TimedStorage(uri)
        t = time.perf_counter()
        shipped = publish(storage, ws, [pack], data, dataset_hash, log=lambda s: None)
        publish_s = time.perf_counter() - t
        tar_path = ws / "cache" / "bundles" / f"{shipped['key']}.tar"
        held = store_bytes()
        tasks = {role: on_node(tar_fetch, nid).remote(shipped, str(fetch_root)) for role, nid in nodes.items()}
        got = {role: ray.get(ref) for role, ref in tasks.items()}
        assert all(g["ok"] and g["node_id"] == nodes[r] for r, g in got.items()), got
        storage.fs.delete_file(storage.path(f"prepared/{shipped['key']}.tar"))
    finally:
        pack.rename(pack.with_name("bench"))
        shutil.rmtree(fetch_root, ignore_errors=True)
    return {"publish_s": publish_s, "upload_s": storage.upload_s, "tar_s": publish_s - storage.upload_s,
            "fetch_s": {r: g["seconds"] for r, g in got.items()}, "bytes": tar_path.stat().st_size,
            "store": held}, tar_path


def object_arm(tar_path: Path, nodes: dict[str, str], fetch_root: Path) -> dict:
    """`ray.put` the tar's bytes, then get + write + extract on both nodes at once."""
    import numpy as np
    import ray

    t = time.perf_counter()
    ref = ray.put(np.frombuffer(tar_path.read_bytes(), dtype=np.uint8))
    put_s = time.perf_counter() - t
    held = store_bytes()
    tasks = {role: on_node(object_fetch, nid).remote([ref], str(fetch_root), tar_path.stem)
             for role, nid in nodes.items()}
    got = {role: ray.get(r) for role, r in tasks.items()}
    assert all(g["ok"] and g["node_id"] == nodes[r] for r, g in got.items()), got
    held_after = store_bytes()
    del ref
    time.sleep(1.0)
    row = {"put_s": put_s, "fetch_s": {r: g["seconds"] for r, g in got.items()},
           "get_s": {r: g["get_seconds"] for r, g in got.items()}, "bytes": tar_path.stat().st_size,
           "store": held, "store_after_gets": held_after, "store_after_del": store_bytes()}
    shutil.rmtree(fetch_root, ignore_errors=True)
    return row


def child_driver(address: str, tar: str, out: str, *uris: str) -> None:
    """A second driver: puts the tar's bytes and publishes the tar, records what the head holds, and exits."""
    import numpy as np
    import ray

    ray.init(address=address, log_to_driver=False)
    ref = ray.put(np.frombuffer(Path(tar).read_bytes(), dtype=np.uint8))
    for uri in uris:
        Storage(uri).upload(tar, "prepared/survive.tar")
    Path(out).write_bytes(ray.cloudpickle.dumps(ref))  # out of band: the owner (this driver) stays recorded
    print(json.dumps(store_bytes()))
    ray.shutdown()


def survives(address: str, tar: Path, uris: dict[str, str], tmp: Path) -> dict:
    import ray

    ref_file = tmp / "ref.pkl"
    child = subprocess.run([sys.executable, __file__, "--child-driver", address, str(tar), str(ref_file),
                            *uris.values()], capture_output=True, text=True, timeout=300, env=os.environ)
    assert child.returncode == 0, child.stdout[-2000:] + child.stderr[-2000:]
    held_by_child = json.loads(child.stdout.strip().splitlines()[-1])
    time.sleep(2.0)
    ref = ray.cloudpickle.loads(ref_file.read_bytes())
    try:
        ray.get(ref, timeout=30)
        object_result = "got it"
    except Exception as exc:  # which error it is, is the result
        object_result = type(exc).__name__
    del ref
    out = {"store_while_child_alive": held_by_child, "store_after_child_exit": store_bytes(),
           "object_store": object_result}
    for arm, uri in uris.items():
        storage = Storage(uri)
        out[arm] = "yes" if storage.is_file("prepared/survive.tar") else "no"
        storage.fs.delete_file(storage.path("prepared/survive.tar"))
    return out


def med(xs: list[float]) -> str:
    return f"{statistics.median(xs):.2f} ({min(xs):.2f}–{max(xs):.2f})" if len(xs) > 1 else f"{xs[0]:.2f}"


def table(results: list[dict]) -> str:
    lines = ["| bundle | arm | publish / put, s | fetch on head, s | fetch on worker, s | head object store held "
             "| survives the driver |", "|---|---|---|---|---|---|---|"]
    for res in results:
        mb, surv = f"{res['bytes'] / 1e6:.0f} MB", res["survives"]
        for arm, label in ARMS.items():
            rows = res[arm]
            if arm == "object":
                first = f"put {med([r['put_s'] for r in rows])}"
                kept = f"no ({surv['object_store']})"
            else:
                first = (f"{med([r['publish_s'] for r in rows])} = tar {med([r['tar_s'] for r in rows])} + upload "
                         f"{med([r['upload_s'] for r in rows])}")
                kept = surv[arm]
            runs = f" ({len(rows)} run{'s' if len(rows) > 1 else ''})"
            lines.append(f"| {mb} | {label}{runs} | {first} | {med([r['fetch_s']['head'] for r in rows])} "
                         f"| {med([r['fetch_s']['worker'] for r in rows])} "
                         f"| {statistics.median([r['store']['head'] for r in rows]) / 1e6:.0f} MB | {kept} |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child-driver":
        child_driver(*sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes-mb", type=int, nargs="+", default=[40, 400])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ship"), help="where results.json and table.md go")
    ap.add_argument("--s3-once-above-mb", type=int, default=100, help="bigger bundles go through S3 once, not "
                    "--repeats times: moto reads the whole object for each ranged GET and Storage.download asks one "
                    "per MiB, so a 400 MB fetch from moto takes minutes")
    args = ap.parse_args()
    import boto3

    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="ship-bench-"))
    short = Path(tempfile.mkdtemp(prefix="sb-", dir="/tmp"))  # Ray's socket paths must stay short
    s3_port, gcs_port = free_port(), free_port()
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}", "RAY_AUTH_MODE": "disabled"}
    os.environ.update(env)
    store_mem = max(1_000_000_000, 3 * max(args.sizes_mb) * 1_000_000)
    uris, address = {"s3": f"s3://{BUCKET}/mate", "local": str(tmp / "storage")}, f"127.0.0.1:{gcs_port}"
    moto = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ)
    results, nodes_started = [], []
    try:
        wait_http(f"http://127.0.0.1:{s3_port}/")
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1").create_bucket(Bucket=BUCKET)
        for i, extra in enumerate((["--head", f"--port={gcs_port}", "--include-dashboard=false"],
                                   [f"--address={address}"])):
            (short / f"n{i}").mkdir()
            t = time.perf_counter()
            args_i = [*extra, "--num-cpus=1", "--num-gpus=0", f"--object-store-memory={store_mem}",
                      f"--temp-dir={short / f'n{i}'}", "--disable-usage-stats"]
            nodes_started.append(start_node(args_i, short / f"n{i}.log"))
            print(f"node {i} started in {time.perf_counter() - t:.0f} s", flush=True)
        import ray

        ray.init(address=address, log_to_driver=False)
        deadline = time.time() + 60
        while len([n for n in ray.nodes() if n["Alive"]]) < 2:
            assert time.time() < deadline, "the worker node never joined"
            time.sleep(0.5)
        nodes = {("head" if "node:__internal_head__" in n["Resources"] else "worker"): n["NodeID"]
                 for n in ray.nodes() if n["Alive"]}
        driver_node = ray.get_runtime_context().get_node_id()
        print(f"driver on the {'head' if driver_node == nodes['head'] else 'worker'} node", flush=True)
        for role, nid in nodes.items():
            assert ray.get(on_node(warm, nid).remote(uris["s3"])) == nid
        for size in args.sizes_mb:
            root = tmp / f"b{size}"
            t = time.perf_counter()
            ws, pack, data = make_bundle(root, size)
            print(f"{size} MB bundle written in {time.perf_counter() - t:.1f} s", flush=True)
            res = {"size_mb": size, **{arm: [] for arm in ARMS}}
            for rep in range(args.repeats):
                line = []
                for arm in ("s3", "local"):
                    if arm == "s3" and rep > 0 and size > args.s3_once_above_mb:
                        continue
                    row, tar = tar_arm(uris[arm], ws, pack, data, nodes, tmp / "fetched")
                    res[arm].append(row)
                    line.append(f"{arm}: publish {row['publish_s']:.2f} s (upload {row['upload_s']:.2f}), fetch "
                                f"{row['fetch_s']['head']:.2f}/{row['fetch_s']['worker']:.2f} s")
                    if arm == "s3":
                        tar.unlink()
                row = object_arm(tar, nodes, tmp / "fetched")
                tar.unlink()
                res["object"].append(row)
                res["bytes"] = row["bytes"]
                line.append(f"object: put {row['put_s']:.2f} s, get+extract {row['fetch_s']['head']:.2f}/"
                            f"{row['fetch_s']['worker']:.2f} s, store {row['store']} -> after gets "
                            f"{row['store_after_gets']} -> after del {row['store_after_del']}")
                print(f"  {size} MB #{rep}: " + " | ".join(line), flush=True)
            tar = tmp / "survive.tar"
            shutil.make_archive(str(tar.with_suffix("")), "tar", root, "ws")
            res["survives"] = survives(address, tar, {"s3": uris["s3"], "local": uris["local"]}, tmp)
            tar.unlink()
            print(f"  after the driver exits: {res['survives']}", flush=True)
            shutil.rmtree(root)
            results.append(res)
        ray.shutdown()
    finally:
        stop_nodes(nodes_started, short)
        moto.terminate()
        moto.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(short, ignore_errors=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    text = table(results)
    (args.out / "table.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
