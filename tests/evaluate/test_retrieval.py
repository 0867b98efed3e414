"""The frozen retrieval model: trained once per (dataset, normalisation, config, seed), refused elsewhere, and its
clip embedding is exactly a head on mean-pooled local features (what the optimal partition's prefix sums need)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from mate.cli import main
from mate.config import resolve
from mate.data.dataset import MotionDataset
from mate.data.pack import open_pack
from mate.evaluate.metrics import r_precision
from mate.evaluate.retrieval import EvaluatorMismatch, load, train_or_load

pytestmark = pytest.mark.slow  # over ~10 s (README: `-m "not slow"` for a quick check)


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory, minilm):
    ws = tmp_path_factory.mktemp("ws")
    pack = open_pack(tiny_corpus, ws, progress=False)
    cfg = resolve(["profile=tiny", "evaluator.epochs=12"])
    return ws, pack, cfg, train_or_load(pack, minilm, cfg, ws, seed=3, progress=False)


def test_trained_once_and_identified_by_its_weights(trained, minilm):
    ws, pack, cfg, ev = trained
    weights = ev.path / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = train_or_load(pack, minilm, cfg, ws, seed=3, progress=False)
    assert again.sha == ev.sha and weights.stat().st_mtime_ns == stamp  # loaded, not retrained
    import hashlib

    assert ev.sha == hashlib.sha256(weights.read_bytes()).hexdigest()
    other = train_or_load(pack, minilm, resolve(["profile=tiny", "evaluator.epochs=1"]), ws, seed=4, progress=False)
    assert other.sha != ev.sha and other.path != ev.path  # the partition model is another training


def test_it_learns_to_retrieve_training_pairs(trained):
    _, pack, _, ev = trained
    ds = MotionDataset(pack, "train", random_crop=False)
    items = [ds[i] for i in np.random.default_rng(0).permutation(len(ds))[:128]]
    text = ev.embed_texts([it["text"] for it in items])
    motion = ev.embed_motions([it["motion"] for it in items])
    top3 = r_precision(text, motion, batch_size=32, top_k=3)[2]
    assert top3 > 3 * (3 / 32)  # chance is 3/32 = 0.094
    assert ev.meta["epochs_done"] == 12


def test_clip_embedding_is_a_head_on_mean_local_features(trained):
    """What lets the partition score every window from prefix sums of one pass."""
    _, pack, _, ev = trained
    clip = torch.from_numpy(pack.normalize(pack.motion(0))[None, :96])
    with torch.no_grad():
        tokens = ev.model.motion.tokens(clip)[0]
        whole = ev.model.encode_motion(clip, torch.tensor([96]))[0]
        assert torch.allclose(ev.model.window_head(tokens.mean(0)), whole, atol=1e-5)


def test_refused_for_another_dataset_or_normalisation(trained, tiny_corpus, tmp_path, minilm):
    ws, _, _, ev = trained
    other = tmp_path / "other"
    shutil.copytree(tiny_corpus, other)
    np.save(other / "Std.npy", np.load(other / "Std.npy") * 2)
    other_pack = open_pack(other, ws, progress=False)
    with pytest.raises(EvaluatorMismatch, match="not .*" + other_pack.content_hash):
        load(ev.path, other_pack, minilm)


def test_evaluate_command_scores_real_motions_and_checks_input(trained, tiny_corpus, tmp_path, capsys):
    ws, pack, _, ev = trained
    out = tmp_path / "real"
    args = ["evaluate", "--data", str(tiny_corpus), "--workspace", str(ws), "--motions",
            str(tiny_corpus / "new_joint_vecs"), "--out", str(out), "--quiet", "profile=tiny", "evaluator.epochs=12",
            "evaluator.seed=3"]
    assert main(args) == 0
    import json

    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["evaluator_sha"] == ev.sha and run["dataset_hash"] == pack.content_hash and "git_sha" in run
    assert metrics["eval/fid"] < 0.05 and metrics["eval/r_precision_top3"] > 3 / 32
    assert set(metrics) >= {"eval/mm_dist_ci95", "eval/diversity", "eval/r_precision_top1_ci95"}
    assert 1 / 32 < metrics["eval/r_precision_ceiling"] < 1  # the corpus repeats meanings: the ceiling is below 1
    bad = tmp_path / "bad"
    shutil.copytree(tiny_corpus / "new_joint_vecs", bad)
    test_ids = pack.split("test")
    (bad / f"{test_ids[0]}.npy").unlink()
    nan = np.load(bad / f"{test_ids[1]}.npy")
    nan[3, 5] = np.nan
    np.save(bad / f"{test_ids[1]}.npy", nan)
    np.save(bad / f"{test_ids[2]}.npy", np.zeros((60, 251), np.float32))
    (bad / f"{test_ids[3]}.npy").write_bytes(b"garbage")
    args[args.index("--motions") + 1] = str(bad)
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "4 motion file(s) cannot be scored" in err and "Traceback" not in err
    assert f"{test_ids[0]}.npy: missing" in err and f"{test_ids[1]}.npy: 1 NaN/Inf" in err
    assert f"{test_ids[2]}.npy: expected (T >= 4, 263) features, got shape (60, 251)" in err
    assert f"{test_ids[3]}.npy: " in err


def test_evaluate_with_guo_scorer_loads_the_published_layout(tiny_corpus, tmp_path, capsys):
    """eval.scorer=guo scores with Guo et al.'s evaluator from eval.official_dir (random weights in its layout)."""
    import hashlib
    import json

    from mate.evaluate.guo.fixtures import write_random_checkpoint

    official = tmp_path / "checkpoints"
    write_random_checkpoint(official, "t2m", seed=0)
    base = ["evaluate", "--data", str(tiny_corpus), "--workspace", str(tmp_path / "ws"), "--motions",
            str(tiny_corpus / "new_joint_vecs"), "--quiet", "profile=tiny", "eval.scorer=guo"]
    assert main(base + ["--out", str(tmp_path / "o")]) == 2
    assert "eval.scorer=guo needs eval.official_dir" in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "o"), f"eval.official_dir={official}"]) == 0
    run = json.loads((tmp_path / "o" / "run.json").read_text())
    tar = official / "t2m" / "text_mot_match" / "model" / "finest.tar"
    assert run["scorer"] == "guo" and run["evaluator_sha"] == hashlib.sha256(tar.read_bytes()).hexdigest()
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["eval/fid"] < 1e-3  # the real motions scored against themselves


def test_partition_role_reports_partition_iou_against_the_truth(tiny_corpus, tmp_path):
    import json

    out = tmp_path / "p"
    assert main(["evaluator", "train", "--role", "partition", "--data", str(tiny_corpus), "--workspace",
                 str(tmp_path / "ws"), "--out", str(out), "--quiet", "profile=tiny", "evaluator.epochs=1"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["role"] == "partition" and run["seed"] != resolve(["profile=tiny"]).seed_for("evaluator")
    # it trained on train + val (evaluator.splits), so it is measured on test
    assert 0 < metrics["eval/partition_iou"] <= 1 and 0 < metrics["eval/partition_iou_equal"] <= 1
    assert "evaluator/r_precision_top3" in metrics and not any(k.startswith("val/") for k in metrics)
