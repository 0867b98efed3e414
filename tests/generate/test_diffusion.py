"""The diffusion generator end to end on the tiny corpus: fit, checkpoint/resume, fault injection, sampling, storage."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mate.data.dataset import MotionDataset
from mate.generate.base import Generator, make_generator
from mate.generate.base import CHECKPOINT

from .conftest import tiny_config

TEXTS = ["a person walks forward slowly", "someone waves the left hand then turns clockwise"]


def _gen(text_features, **over):
    return make_generator(tiny_config(**over), 263, (text_features.sentence_dim, text_features.token_dim))


@pytest.fixture(scope="module")
def trained(train_set, text_features, tmp_path_factory):
    """Two tiny epochs straight through, checkpointing, with an on_epoch hook that records and adds a key."""
    ckpt = tmp_path_factory.mktemp("straight")
    gen = _gen(text_features)
    calls = []

    def on_epoch(epoch, metrics):
        saved = torch.load(ckpt / CHECKPOINT, weights_only=True)
        calls.append((epoch, dict(metrics), saved["epoch"]))
        metrics["val/objective"] = 10.0 * epoch

    history = gen.fit(train_set, text_features, on_epoch, checkpoint_dir=ckpt)
    return gen, history, calls, ckpt


def test_on_epoch_sees_each_epoch_after_its_checkpoint_and_can_add_keys(trained):
    gen, history, calls, _ = trained
    assert [c[0] for c in calls] == [1, 2] and [c[2] for c in calls] == [1, 2]  # checkpoint written first
    for (epoch, metrics, _), row in zip(calls, history):
        assert metrics["gen/epoch"] == epoch and math.isfinite(metrics["gen/loss"]) and metrics["gen/loss"] > 0
        assert metrics["cost/gen_epoch_seconds"] > 0 and metrics["gen/stopped_early"] == 0.0
        assert metrics["gen/steps"] == 3  # gen.steps of the tiny profile
        assert row["val/objective"] == 10.0 * epoch  # the hook's key is in the returned history
    assert gen.history is history


def test_nan_loss_raises_floating_point_error(train_set, text_features):
    gen = _gen(text_features, debug__nan_epoch=2)
    with pytest.raises(FloatingPointError, match=r"epoch 2.*debug\.nan_epoch"):
        gen.fit(train_set, text_features)


def test_time_budget_stops_early_and_one_pass_covers_the_split(train_set, text_features, tmp_path):
    gen = _gen(text_features, gen__max_seconds=0.0)
    history = gen.fit(train_set, text_features, checkpoint_dir=tmp_path)
    assert len(history) == 1 and history[0]["gen/steps"] == 1 and history[0]["gen/stopped_early"] == 1.0
    again = _gen(text_features, gen__max_seconds=0.0).fit(train_set, text_features, resume_dir=tmp_path)
    assert again == history  # a stopped run stays stopped when resumed
    one_pass = _gen(text_features, gen__steps=0, gen__epochs=1, gen__batch=64).fit(train_set, text_features)
    assert one_pass[0]["gen/steps"] == math.ceil(len(train_set) / 64)


def test_training_loss_decreases_when_overfitting_a_few_clips(gen_pack, text_features):
    few = MotionDataset(gen_pack, "train", random_crop=False)
    few.clip, few.cap, few.rows = few.clip[:4], few.cap[:4], few.rows[:4]
    gen = _gen(text_features, gen__epochs=4, gen__steps=25, gen__batch=4, gen__lr=2e-3, gen__dropout=0.0,
               gen__hidden=64)
    losses = [h["gen/loss"] for h in gen.fit(few, text_features)]
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("cond", ["sentence", "tokens"])
@pytest.mark.parametrize("patch", [1, 4])
def test_samples_have_the_requested_lengths(text_features, cond, patch):
    gen = _gen(text_features, gen__cond=cond, gen__patch=patch)
    out = gen.sample(TEXTS, [13, 24], n=2, seed=1, text=text_features, steps=2)
    assert len(out) == 2 and all(len(per_text) == 2 for per_text in out)
    for per_text, length in zip(out, [13, 24]):
        for x in per_text:
            assert x.shape == (length, 263) and x.dtype == np.float32 and np.isfinite(x).all()


def test_sampling_is_deterministic_per_seed_and_independent_of_the_batch(trained, text_features):
    gen = trained[0]
    a = gen.sample(TEXTS, [20, 12], n=2, seed=5, steps=3)
    b = gen.sample(TEXTS, [20, 12], n=2, seed=5, steps=3)
    c = gen.sample(TEXTS, [20, 12], n=2, seed=6, steps=3)
    for i in range(2):
        for k in range(2):
            assert np.array_equal(a[i][k], b[i][k])
            assert not np.allclose(a[i][k], c[i][k], atol=1e-3)
    assert not np.allclose(a[0][0], a[0][1], atol=1e-3)  # n samples of one text differ
    alone = gen.sample(TEXTS[:1], [20], n=1, seed=5, steps=3, batch_size=1)
    np.testing.assert_allclose(alone[0][0], a[0][0], atol=1e-5)


def test_save_load_round_trip_gives_identical_samples(trained, text_features, tmp_path):
    gen, _, _, ckpt = trained
    path = gen.save(tmp_path / "gen.pt")
    loaded = Generator.load(path, text_features)
    want = gen.sample(TEXTS, [16, 9], seed=3, steps=2)
    got = loaded.sample(TEXTS, [16, 9], seed=3, steps=2)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(want, got))
    from_checkpoint = Generator.load(ckpt / CHECKPOINT, text_features)  # a trial's checkpoint loads the same way
    got = from_checkpoint.sample(TEXTS, [16, 9], seed=3, steps=2)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(want, got))
    assert len(from_checkpoint.history) == 2


def test_geometric_losses_see_sliding_feet_and_reach_the_training_loss(gen_pack, train_set, text_features):
    """MDM's velocity and foot-contact losses, on joints recovered from the features: zero velocity error and
    slow contact feet for real clips; a root that moves 1.5x too fast for its legs (the generator's typical fault)
    makes the contact feet slide; with a weight the terms enter the training loss, and their gradient reaches
    the prediction."""
    from mate.data.dataset import collate

    gen = _gen(text_features, gen__dropout=0.0, gen__w_vel=0.0, gen__w_foot=0.0)
    gen._norm = tuple(torch.as_tensor(a, dtype=torch.float32) for a in (gen_pack.mean, gen_pack.std))
    items = collate([train_set[i] for i in range(8)])
    x0, frames = items["motion"], items["mask"]
    vel, foot = gen.geometric_losses(x0, x0, frames)
    mean, std = gen._norm
    raw = x0 * std + mean
    raw[..., 1:3] *= 1.5
    slide = ((raw - mean) / std).requires_grad_()
    vel_s, foot_s = gen.geometric_losses(slide, x0, frames)
    assert float(vel) == 0.0 and float(foot) < 0.1
    assert float(foot_s.detach()) > 3 * float(foot) and float(vel_s.detach()) > 0.05
    (vel_s + foot_s).backward()
    assert slide.grad[..., 1:3].abs().sum() > 0

    text = text_features(items["text"])
    torch.manual_seed(0)
    plain = float(gen.training_loss(x0, frames, text))
    gen.cfg["gen.w_foot"] = gen.cfg["gen.w_vel"] = 1.0
    torch.manual_seed(0)
    assert float(gen.training_loss(x0, frames, text)) > plain
    gen.cfg["gen.geo_max_t"] = 0.0  # no step is low-noise enough: the terms drop out, the rest is unchanged
    torch.manual_seed(0)
    assert float(gen.training_loss(x0, frames, text)) == pytest.approx(plain, abs=1e-6)


def test_min_snr_weighting_scales_each_items_error_by_its_capped_snr(train_set, text_features):
    """gen.snr_gamma: an item's x0 error counts min(SNR_t, gamma) times; low-noise steps (SNR above gamma) are
    capped and high-noise ones fade out, the ratio to the unweighted loss is exactly that weight."""
    from mate.data.dataset import collate

    gen = _gen(text_features, gen__dropout=0.0)
    items = collate([train_set[0]])
    x0, frames, text = items["motion"], items["mask"], text_features(items["text"])
    seen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        t = torch.randint(0, gen.schedule.steps, (1,))
        ab = float(gen.schedule.alpha_bar(t))
        want = min(ab / (1 - ab), 5.0)
        losses = []
        for gamma in (0.0, 5.0):
            gen.cfg["gen.snr_gamma"] = gamma
            torch.manual_seed(seed)
            losses.append(float(gen.training_loss(x0, frames, text)))
        assert losses[1] / losses[0] == pytest.approx(want, rel=1e-4)
        seen.add(want == 5.0)
    assert seen == {True, False}  # both the capped and the faded regime were exercised


def _output_rank(gen, text_features, t: int) -> int:
    """Rank of the (centred) predictions of the first token over 96 random inputs at step t, one text."""
    torch.manual_seed(0)
    x = torch.randn(96, 8, 263)
    frames = torch.ones(96, 8, dtype=torch.bool)
    text = text_features(["a person walks forward"] * 96)
    with torch.no_grad():
        gen.net.eval()
        out = gen.net(x, torch.full((96,), t), frames, gen.net.condition(text))[:, :gen.net.patch].reshape(96, -1)
    sv = torch.linalg.svdvals(out - out.mean(0))
    return int((sv > 1e-4 * sv[0]).sum())


def test_skip_path_starts_as_plain_prediction_and_lifts_the_output_rank_past_the_width(train_set, text_features):
    """gen.skip: at initialisation the network predicts exactly what the plain one does (same seed); once
    trained, its predictions span more than gen.hidden dimensions, which the plain output layer never can."""
    plain, skip = _gen(text_features), _gen(text_features, gen__skip=True)
    x, t = torch.randn(2, 8, 263), torch.tensor([3, 50])
    frames, cond = torch.ones(2, 8, dtype=torch.bool), plain.net.condition(text_features(TEXTS))
    plain.net.eval()
    skip.net.eval()
    torch.testing.assert_close(skip.net(x, t, frames, cond), plain.net(x, t, frames, cond))
    hidden = plain.net.hidden
    assert _output_rank(plain, text_features, 0) <= hidden
    skip.fit(train_set, text_features)
    assert float(skip.net.skip.weight.detach().abs().max()) > 0
    assert _output_rank(skip, text_features, 0) > 2 * hidden


def test_cosine_learning_rate_decays_to_zero_and_constant_stays(text_features):
    gen = _gen(text_features, gen__lr=1e-3, gen__lr_schedule="cosine")
    assert [gen.learning_rate(p) for p in (0.0, 0.5, 1.0, 2.0)] == pytest.approx([1e-3, 5e-4, 0.0, 0.0], abs=1e-12)
    assert gen.learning_rate(0.25) > gen.learning_rate(0.75) > 0
    assert _gen(text_features, gen__lr=1e-3).learning_rate(0.9) == 1e-3


def test_moving_average_weights_sample_and_survive_kill_resume_and_storage(train_set, text_features, tmp_path):
    """With gen.ema the sampler reads the averaged weights, not the last step's; a killed run resumed from its
    checkpoint ends with the same trained and averaged weights (and cosine learning rates) as a straight one; a
    saved generator loads both back."""
    over = dict(gen__ema=0.9, gen__lr_schedule="cosine", gen__lr=3e-3, gen__epochs=3)
    straight = _gen(text_features, **over)
    history = straight.fit(train_set, text_features)
    killed = _gen(text_features, debug__fail_epoch=3, **over)
    with pytest.raises(RuntimeError, match=r"debug\.fail_epoch=3"):
        killed.fit(train_set, text_features, checkpoint_dir=tmp_path)
    assert torch.load(tmp_path / CHECKPOINT, weights_only=True)["epoch"] == 2
    resumed = _gen(text_features, debug__fail_epoch=3, **over)  # a retry: a fresh process with the same config
    again = resumed.fit(train_set, text_features, checkpoint_dir=tmp_path, resume_dir=tmp_path)
    assert [h["gen/epoch"] for h in again] == [1, 2, 3]
    for a, b in zip(history, again):
        assert abs(a["gen/loss"] - b["gen/loss"]) <= 1e-6
    for net in ("net", "ema"):
        for (name, a), b in zip(getattr(straight, net).state_dict().items(),
                                getattr(resumed, net).state_dict().values()):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0, msg=f"{net}.{name}")
    moved = [float((a - b).abs().max()) for a, b in zip(straight.net.parameters(), straight.ema.parameters())]
    assert max(moved) > 1e-4  # the average lags the trained weights

    want = straight.sample(TEXTS, [16, 8], seed=2, steps=2)
    np.testing.assert_allclose(resumed.sample(TEXTS, [16, 8], seed=2, steps=2)[0][0], want[0][0], atol=1e-5)
    raw = _gen(text_features, **{**over, "gen__ema": 0.0})
    raw.net.load_state_dict(straight.net.state_dict())
    assert not np.allclose(raw.sample(TEXTS, [16, 8], seed=2, steps=2, text=text_features)[0][0], want[0][0],
                           atol=1e-4)
    loaded = Generator.load(straight.save(tmp_path / "gen.pt"), text_features)
    assert all(np.array_equal(x[0], y[0]) for x, y in zip(want, loaded.sample(TEXTS, [16, 8], seed=2, steps=2)))
    torch.testing.assert_close(loaded.net.state_dict(), straight.net.state_dict())
