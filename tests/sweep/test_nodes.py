"""Shared storage and the per-node fetch, on a local path (the cluster test runs the same code against S3): a storage
that cannot be written is refused, the prepared bundle is published once and fetched once per node even when the
node's trials ask at the same moment, and the fetched workspace opens the shipped pack without repacking."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from mate.cache import get_or_build, recording
from mate.data.pack import open_pack
from mate.errors import UserError
from mate.storage import Storage
from mate.sweep.nodes import bundle_key, fetch, fetch_count, publish


def test_a_storage_that_cannot_be_written_is_one_clear_message(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(UserError, match="cannot write there"):
        Storage(blocker / "sub").check_writable()
    Storage(tmp_path / "fine" / "deeper").check_writable()  # a missing folder is created


def test_storage_round_trip_and_listing(tmp_path):
    st = Storage(tmp_path / "s")
    st.write_text("a/b/c.txt", "x")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    (src / "d" / "e.bin").write_bytes(b"12")
    st.upload(src, "up")
    assert st.list_dirs("") == ["a", "up"] and st.list_files("up") == ["d/e.bin"]
    assert st.read_text("a/b/c.txt") == "x" and st.is_file("a/b/c.txt") and not st.exists("nope")
    assert (st.download("up", tmp_path / "back") / "d" / "e.bin").read_bytes() == b"12"


def test_the_bundle_is_fetched_once_per_node_and_opens_the_shipped_pack(tiny_corpus, tmp_path):
    ws = tmp_path / "driver-ws"
    with recording() as used:
        pack = open_pack(tiny_corpus, ws, progress=False)
        get_or_build(ws / "cache" / "text" / "k1", lambda tmp: tmp.write_text("features"))
    assert ws / "cache" / "packs" / pack.content_hash in used
    st = Storage(tmp_path / "shared")
    logs: list[str] = []
    shipped = publish(st, ws, used, tiny_corpus, pack.content_hash, log=logs.append)
    again = publish(st, ws, used, tiny_corpus, pack.content_hash, log=logs.append)
    assert again == shipped and "already on" in logs[-1]
    json.dumps(shipped)  # travels to the trials as a plain dict

    root, results = tmp_path / "nodes", []
    threads = [threading.Thread(target=lambda n=n: results.append((n, fetch(shipped, n, root))))
               for n in ("node-a", "node-a", "node-a", "node-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fetch_count("node-a", root) == 1 and fetch_count("node-b", root) == 1
    node_ws, node_data = dict(results)["node-b"]
    assert (node_ws / "cache" / "text" / "k1").read_text() == "features"
    assert not (node_data / "new_joints").exists()  # recoverable from the features: stays behind
    assert not (node_data / "new_joint_vecs").exists() and (node_data / "texts").is_dir()  # the pack holds them
    shipped_pack = open_pack(node_data, node_ws, progress=False)
    assert shipped_pack.content_hash == pack.content_hash and not getattr(shipped_pack, "built", False)
    cid = pack.split("train")[0]
    assert np.array_equal(shipped_pack.motion(cid), pack.motion(cid))  # the motions come from the shipped pack
    assert len(list((node_ws / "cache" / "packs").glob("*/meta.json"))) == 1  # no second pack was built


def test_segmentations_published_by_mate_segment_reach_a_fresh_driver_workspace(tiny_corpus, tmp_path, capsys):
    """LLM segmentation runs where the key is and publishes its cache; the cluster's prepare stage pulls it (here
    the rules backend stands in for the LLM: the files and paths are the same)."""
    from mate.cli import main
    from mate.sweep.prepare import SEGMENTS, pull_segments

    shared = tmp_path / "shared"
    assert main(["segment", "--data", str(tiny_corpus), "--backend", "rules", "--workspace", str(tmp_path / "laptop"),
                 "--storage", str(shared), "--quiet"]) == 0
    assert "published:" in capsys.readouterr().out
    mine = sorted(p.relative_to(tmp_path / "laptop") for p in (tmp_path / "laptop" / SEGMENTS).rglob("*.jsonl"))
    assert mine and sorted(Storage(shared).list_files(SEGMENTS)) == [str(p.relative_to(SEGMENTS)) for p in mine]
    head = tmp_path / "head"
    pull_segments(Storage(shared), head, log=lambda s: None)
    for rel in mine:
        assert (head / rel).read_bytes() == (tmp_path / "laptop" / rel).read_bytes()


def test_what_a_build_reads_is_not_a_need_so_a_rerun_ships_the_same_bundle(tmp_path):
    """The bundle's key is the set of entries the prepare stage used: an entry read only while building another
    (text features an evaluator trains on) is not read on a rerun, so counting it would give the rerun a second key
    and every node a second download."""
    ws = tmp_path / "ws"

    def evaluator(tmp):
        get_or_build(ws / "cache" / "text" / "train-features", lambda t: t.write_text("f"))
        tmp.write_text("weights")

    runs = []
    for _ in range(2):
        with recording() as used:
            get_or_build(ws / "cache" / "evaluators" / "e", evaluator)
            get_or_build(ws / "cache" / "text" / "scored", lambda t: t.write_text("g"))
        runs.append(bundle_key(ws, used, "h"))
    assert runs[0] == runs[1] and runs[0][1] == ["cache/evaluators/e", "cache/text/scored"]


def test_a_local_model_folder_travels_in_the_bundle_and_a_missing_one_is_refused_first(tiny_corpus, tmp_path,
                                                                                       capsys):
    from mate.cli import main
    from mate.sweep.nodes import shipped_model
    from mate.text.encoder import TextEncoder
    from mate.text.families import folder_hash
    from tests.text.tiny_models import build_tiny

    model = build_tiny("distilbert", tmp_path / "my-model")
    ws = tmp_path / "driver-ws"
    with recording() as used:
        pack = open_pack(tiny_corpus, ws, progress=False)
    st = Storage(tmp_path / "shared")
    plain = publish(st, ws, used, tiny_corpus, pack.content_hash, log=lambda s: None)
    shipped = publish(st, ws, used, tiny_corpus, pack.content_hash, log=lambda s: None, model_dir=model)
    assert shipped["key"] != plain["key"] and shipped["model"] and not plain["model"]
    node_ws, _ = fetch(shipped, "node-c", tmp_path / "nodes")
    copy = shipped_model(shipped, node_ws)
    assert copy and folder_hash(Path(copy)) == folder_hash(model)  # the same model: the same caches on the node
    assert TextEncoder.load(copy).family == "distilbert"
    assert shipped_model(plain, node_ws) is None

    space = tmp_path / "s.yaml"
    space.write_text("name: badmodel\nprofile: tiny\nconstants: {encoder.path: %s}\ngrid: {align.sigma_scale: [1.0]}\n"
                     "objective: {metric: val/eval/r_precision_top3, mode: max}\n" % (tmp_path / "no-such-model"))
    assert main(["sweep", str(space), "--workspace", str(tmp_path / "ws"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "no such model folder" in err and "Traceback" not in err
    assert not (tmp_path / "ws" / "sweeps" / "badmodel").exists()  # refused before anything ran
