"""The motion tokenizer (residual VQ-VAE): trained once per dataset and keys, shared, never used when it cannot be
trusted; codebooks that learn by moving averages and reassign dead codes; the `mate tokenizer train` report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from mate.generate.tokenizer import TokenizerMismatch, load, reconstruct, train_or_load
from mate.generate.tokenizer.model import Codebook, MotionTokenizer, ResidualVQ
from mate.generate.tokenizer.train import WEIGHTS, tokenizer_dir

from .conftest import tiny_config


@pytest.fixture(scope="module")
def built(gen_pack, tmp_path_factory):
    ws = tmp_path_factory.mktemp("tok_ws")
    lines: list[str] = []
    tok = train_or_load(gen_pack, tiny_config(), ws, progress=False, log=lines.append)
    return ws, tok, lines


def test_the_tokenizer_is_trained_once_and_shared_by_other_trials_and_gen_settings(built, gen_pack):
    ws, tok, lines = built
    assert lines == [] and (tok.path / WEIGHTS).is_file()
    stamp = (tok.path / WEIGHTS).stat().st_mtime_ns
    for other in (tiny_config(seed=5), tiny_config(gen__lr=3e-3, gen__cond="tokens")):  # another trial, gen.* setting
        again = train_or_load(gen_pack, other, ws, progress=False)
        assert again.path == tok.path and again.sha == tok.sha
    assert (tok.path / WEIGHTS).stat().st_mtime_ns == stamp  # loaded, not trained again
    assert tokenizer_dir(gen_pack, tiny_config(gen__vq_codes=16), ws) != tok.path  # a tokenizer key is a new one
    assert tok.meta["steps_done"] == 2 * 3 and tok.meta["dataset_hash"] == gen_pack.content_hash


@pytest.mark.parametrize("damage", ["truncate", "other_dataset", "garbage_meta"])
def test_an_untrustworthy_cached_tokenizer_is_reported_in_one_line_and_rebuilt(built, gen_pack, tmp_path, damage):
    ws, tok, _ = built
    copy = tmp_path / "ws"
    shutil.copytree(ws, copy)
    folder = tokenizer_dir(gen_pack, tiny_config(), copy)
    if damage == "truncate":
        data = (folder / WEIGHTS).read_bytes()
        (folder / WEIGHTS).write_bytes(data[: len(data) // 2])
        named = folder / WEIGHTS
    elif damage == "other_dataset":
        meta = json.loads((folder / "meta.json").read_text())
        meta["dataset_hash"] = "0123456789abcdef"
        (folder / "meta.json").write_text(json.dumps(meta))
        named = folder / "meta.json"
    else:
        (folder / "meta.json").write_text("{not json")
        named = folder / "meta.json"
    with pytest.raises(TokenizerMismatch, match=str(named)):
        load(folder, gen_pack)
    lines: list[str] = []
    rebuilt = train_or_load(gen_pack, tiny_config(), copy, progress=False, log=lines.append)
    assert len(lines) == 1 and str(named) in lines[0] and "rebuilding" in lines[0]
    assert rebuilt.sha == tok.sha  # the training is deterministic: the same tokenizer comes back
    assert load(folder, gen_pack).sha == tok.sha


def test_dead_codes_are_reassigned_to_latents_of_the_batch():
    torch.manual_seed(0)
    book = Codebook(codes=8, dim=2, decay=0.5)
    spread = torch.randn(64, 2)
    book.update(spread, book.nearest(spread))  # seeded from a spread batch: every code near some point
    far = torch.randn(64, 2) * 0.01 + torch.tensor([50.0, 50.0])  # then the data moves away from all but one code
    for _ in range(10):  # usage decays by half a step: the codes the old data held fall below one vector
        book.update(far, book.nearest(far))
    assert int(book.resets) > 0
    # every code now sits on (or is averaged from) the new data: none is left where the old data was
    assert torch.cdist(book.embed, far).min(1).values.max() < 1.0


def test_quantizer_dropout_trains_only_the_first_layers_and_lookup_inverts_the_codes():
    torch.manual_seed(0)
    rvq = ResidualVQ(layers=3, codes=16, dim=4, drop=1.0)  # always drop in training
    z = torch.randn(2, 5, 4)
    rvq.train()
    counts = {int((rvq(z)[1][0, 0] >= 0).sum()) for _ in range(40)}  # layers a batch was quantised with
    assert 1 in counts and counts != {3}  # fewer layers than all, down to the base layer alone
    rvq.eval()
    q, codes, _ = rvq(z)
    assert (codes >= 0).all() and torch.allclose(rvq.lookup(codes), q, atol=1e-6)
    assert torch.allclose(rvq.lookup(codes[..., :1]), rvq.books[0].embed[codes[..., 0]])


def test_encode_decode_shapes_and_reconstruct_crops_to_whole_tokens(built, gen_pack):
    _, tok, _ = built
    model = MotionTokenizer(263, width=16, code_dim=8, depth=1, layers=2, codes=8)
    codes = model.encode(torch.randn(3, 24, 263))
    assert codes.shape == (3, 6, 2) and model.decode(codes).shape == (3, 24, 263)
    with pytest.raises(ValueError, match="multiple of 4"):
        model(torch.randn(1, 10, 263))
    clip = gen_pack.normalize(gen_pack.motion(int(gen_pack.split_indices("val")[0])))[:45]
    out, c = reconstruct(tok, [clip])
    assert out[0].shape == (44, 263) and c[0].shape == (11, tok.layers)
    alone = reconstruct(tok, [clip[:44]])[0][0]
    assert np.allclose(out[0], alone, atol=1e-5)  # each clip alone: the same result whatever else is asked


@pytest.mark.slow
def test_mate_tokenizer_train_prints_its_report_and_writes_metrics(built, tiny_corpus, capsys, tmp_path):
    from mate.cli import main

    ws, tok, _ = built
    assert main(["tokenizer", "train", "--data", str(tiny_corpus), "--workspace", str(ws), "--quiet",
                 "--out", str(tmp_path / "r"), "profile=tiny"]) == 0
    text = capsys.readouterr().out
    assert f"tokenizer {tok.sha[:12]}" in text and "(cached)" in text and "random real clip" in text
    assert text.count("[pass]") + text.count("[FAIL]") == 3
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["tokenizer_sha"] == tok.sha
    assert 0 < metrics["val/tokenizer/codes_used_0"] <= 1 and metrics["val/tokenizer/mpjpe_mm"] > 0
    assert metrics["val/tokenizer/foot_skate_ratio"] == pytest.approx(
        metrics["val/tokenizer/foot_skate"] / metrics["val/tokenizer/foot_skate_real"])
    # the synthetic corpus's val clips apart: the ones with a held-out combination and the rest
    seen, held = metrics["val/tokenizer/clips_seen"], metrics["val/tokenizer/clips_heldout"]
    assert seen > 1 and held > 1 and seen + held == metrics["val/tokenizer/clips"]
    assert "held-out motion" in text and metrics["val/tokenizer/fid_seen"] != metrics["val/tokenizer/fid_heldout"]
    assert "probes read back" in text and 0 <= metrics["val/tokenizer/speed_acc_heldout"] <= 1


def test_the_probe_ceiling_reads_annotations_on_the_crop_and_drops_what_the_reconstruction_loses(gen_pack, tiny_corpus):
    from mate.evaluate.truth import load_annotations
    from mate.tokenizer_command import crop, cropped_annotation, probe_ceiling

    ann = {"id": "x", "segments": [{"span": [0, 30]}, {"span": [30, 80]}, {"span": [70, 90]}]}
    assert crop(90, 40) == (25, 40) and crop(43, 196) == (1, 40)
    assert [g["span"] for g in cropped_annotation(ann, 20, 40)["segments"]] == [[0, 10], [10, 40]]
    notes = load_annotations(tiny_corpus)
    raw, anns = [], []
    for i in gen_pack.split_indices("val"):  # cropped by 4-7 rows: every segment moves
        m = gen_pack.motion(int(i))
        a, n = crop(len(m), len(m) - 4)
        raw.append(m[a : a + n])
        anns.append(cropped_annotation(notes[gen_pack.ids[int(i)]], a, n))
    assert sum(len(m) for m in raw) < sum(len(gen_pack.motion(int(i))) for i in gen_pack.split_indices("val"))
    exact = probe_ceiling(raw, anns)
    assert set(exact) == {f"tokenizer/{a}_acc" for a in ("turn", "direction", "speed", "action", "limb")}
    present = {k: v for k, v in exact.items() if v == v}  # an attribute no segment carries is NaN
    assert present and all(v == 1.0 for v in present.values())  # a perfect decoder: every annotation read back
    backwards = probe_ceiling([m[::-1].copy() for m in raw], anns)
    assert min(backwards[k] for k in present) < 1.0


def _feet_moving(height: float, speed: float, frames: int = 8) -> torch.Tensor:
    """(1, T, 22, 3) joints: every joint at `height`, the feet sliding along x at `speed` m/s (20 fps)."""
    j = torch.full((1, frames, 22, 3), height)
    j[..., 0] = 0.0
    j[:, :, [7, 8, 10, 11], 0] = torch.arange(frames, dtype=torch.float32)[:, None] * speed / 20.0
    return j


@pytest.mark.parametrize("real_swing", [False, True])
def test_foot_slide_counts_low_moving_toes_of_either_clip_but_not_a_lifted_swing(real_swing):
    from mate.data.skeleton import skeleton_for_dim
    from mate.generate.tokenizer.train import foot_slide

    sk = skeleton_for_dim(263)
    want = _feet_moving(0.0, 0.0)  # the real clip: feet on its floor
    if real_swing:  # the real toes 10 cm up except on one frame (the clip's floor stays at its feet)
        want[:, 1:, [10, 11], 1] = 0.1
    low = _feet_moving(0.0, 1.0).requires_grad_(True)
    assert foot_slide(low, want, sk).item() == pytest.approx(1.0, rel=1e-4)
    # toes 10 cm above their own floor may move freely unless the real clip has them on the floor
    lifted = _feet_moving(0.0, 1.0)
    lifted[:, 1:, [10, 11], 1] = 0.1
    assert foot_slide(lifted, want, sk).item() == pytest.approx(0.0 if real_swing else 1.0, abs=1e-4)
    # lifting the whole body does not escape (each clip is measured from its own floor)
    assert foot_slide(low + torch.tensor([0.0, 0.05, 0.0]), want, sk).item() == pytest.approx(1.0, rel=1e-4)
    if real_swing:  # the way out for a low, moving toe that the real clip swings: lift it
        foot_slide(low, want, sk).backward()
        assert (low.grad[0, 1:, [10, 11], 1] < 0).all()


def test_gen_vq_mirror_trains_on_mirror_images_of_half_the_windows(gen_pack):
    from mate.data.features import mirror_features
    from mate.generate.tokenizer.train import _Reconstruction, build_model

    def windows(mirror: bool) -> np.ndarray:
        cfg = tiny_config(gen__vq_mirror=mirror, gen__vq_batch=16, gen__vq_window=8)
        model = build_model(cfg, gen_pack.dim)
        task = _Reconstruction(model, gen_pack, cfg, torch.optim.SGD(model.parameters(), lr=0.0), torch.device("cpu"))
        return torch.cat(list(task.batches(0))).numpy()

    plain, mixed = windows(False), windows(True)
    assert plain.shape == mixed.shape
    same = [np.array_equal(a, b) for a, b in zip(plain, mixed)]
    flipped = [np.allclose(gen_pack.normalize(mirror_features(gen_pack.denormalize(a))), b, atol=1e-4)
               for a, b in zip(plain, mixed)]
    # every window is either the plain one or its mirror image, and both kinds occur
    assert all(s or f for s, f in zip(same, flipped)) and 0 < sum(flipped) < len(flipped)


@pytest.mark.slow
def test_gen_vq_noise_fine_tunes_only_the_decoder_on_top_of_the_shared_first_stage(built, gen_pack, tiny_corpus,
                                                                                    capsys, tmp_path):
    from mate.cli import main

    ws, tok, _ = built
    stamp = (tok.path / WEIGHTS).stat().st_mtime_ns
    noisy = train_or_load(gen_pack, tiny_config(gen__vq_noise=0.5, gen__vq_noise_steps=4), ws, progress=False)
    assert noisy.path != tok.path and (tok.path / WEIGHTS).stat().st_mtime_ns == stamp  # the first stage, reused
    assert noisy.meta["first_stage"]["sha"] == tok.sha and noisy.meta["steps_done"] == tok.meta["steps_done"] + 4
    first, second = tok.model.state_dict(), noisy.model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first if not k.startswith("decoder."))  # the same codes
    assert any(not torch.equal(first[k], second[k]) for k in first if k.startswith("decoder."))
    # another noise setting is another tokenizer; no noise is the first stage whatever the steps say
    assert tokenizer_dir(gen_pack, tiny_config(gen__vq_noise=0.3, gen__vq_noise_steps=4), ws) not in (tok.path,
                                                                                                     noisy.path)
    assert tokenizer_dir(gen_pack, tiny_config(gen__vq_noise_steps=7), ws) == tok.path
    assert train_or_load(gen_pack, tiny_config(gen__vq_noise=0.5, gen__vq_noise_steps=4), ws,
                         progress=False).sha == noisy.sha  # cached, and the fine-tuning is deterministic
    assert main(["tokenizer", "train", "--data", str(tiny_corpus), "--workspace", str(ws), "--quiet", "--out",
                 str(tmp_path / "r"), "profile=tiny", "gen.vq_noise=0.5", "gen.vq_noise_steps=4"]) == 0
    text = capsys.readouterr().out
    assert f"tokenizer {noisy.sha[:12]}" in text and "noisy codes" in text and "(cached)" in text
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["tokenizer/noise_seconds"] == pytest.approx(noisy.meta["noise_seconds"])


def test_the_noisy_code_stage_replaces_a_share_of_the_base_codes_only(built, gen_pack):
    from mate.config import ConfigError
    from mate.generate.tokenizer.train import _NoisyCodes

    _, tok, _ = built
    cfg = tiny_config(gen__vq_noise=1.0, gen__vq_noise_steps=1, gen__vq_batch=64, gen__vq_window=32)
    model = MotionTokenizer(**tok.model.config)
    model.load_state_dict(tok.model.state_dict())
    task = _NoisyCodes(model, gen_pack, cfg, torch.optim.SGD(model.decoder.parameters(), lr=0.0),
                       torch.device("cpu"))
    x = next(iter(task.batches(0)))
    torch.manual_seed(0)
    _, codes, _ = task.forward(x)
    clean = model.encode(x)
    changed = (codes[..., 0] != clean[..., 0]).float().mean().item()
    assert 0.3 < changed < 0.7  # shares uniform in [0, 1] per window: half the base codes on average
    assert torch.equal(codes[..., 1:], clean[..., 1:])
    assert [p.requires_grad for p in model.encoder.parameters()] == [False] * len(list(model.encoder.parameters()))
    with pytest.raises(ConfigError, match="gen.vq_noise"):
        _NoisyCodes(model, gen_pack, tiny_config(gen__vq_noise=1.5), None, torch.device("cpu"))
