"""The denoiser: shapes, length masking and classifier-free guidance, on real text features."""

from __future__ import annotations

import pytest
import torch

from mate.generate.base import make_generator
from mate.generate.diffusion import DiffusionGenerator

from .conftest import tiny_config


def _gen(text_features, **over):
    cfg = tiny_config(**over)
    return make_generator(cfg, 263, (text_features.sentence_dim, text_features.token_dim))


def _inputs(gen, text_features, lengths, frames_total):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(len(lengths), frames_total, 263, generator=g)
    frames = torch.arange(frames_total)[None] < torch.tensor(lengths)[:, None]
    text = text_features(["a person walks forward slowly", "someone waves the right hand"][: len(lengths)])
    return x, frames, text


def test_make_generator_builds_the_configured_kind(text_features):
    gen = _gen(text_features)
    assert isinstance(gen, DiffusionGenerator) and gen.kind == "diffusion"
    assert gen.cfg["gen.patch"] == 4 and gen.cfg["gen.seed"] == tiny_config().seed_for("gen")


@pytest.mark.parametrize("cond", ["sentence", "tokens"])
@pytest.mark.parametrize("patch", [1, 4])
def test_padded_rows_do_not_change_the_loss(text_features, cond, patch):
    gen = _gen(text_features, gen__cond=cond, gen__patch=patch, gen__cond_drop=0.5)
    gen.net.eval()
    x0, frames, text = _inputs(gen, text_features, [13, 24], 24)  # 13: not a multiple of the patch
    losses = []
    for fill in (0.0, 100.0):
        x = x0.clone()
        x[~frames] = fill
        torch.manual_seed(0)
        losses.append(gen.training_loss(x, frames, text))
    assert torch.isfinite(losses[0]) and losses[0].ndim == 0
    assert torch.equal(losses[0], losses[1])


@pytest.mark.parametrize("cond", ["sentence", "tokens"])
def test_a_prediction_does_not_depend_on_how_far_the_batch_is_padded(text_features, cond):
    gen = _gen(text_features, gen__cond=cond)
    gen.net.eval()
    x, frames, text = _inputs(gen, text_features, [12, 20], 20)
    t = torch.tensor([30, 70])
    with torch.no_grad():
        cond_ = gen.net.condition(text)
        full = gen.net(x, t, frames, cond_)
        one = gen.net.condition(text_features(["a person walks forward slowly"]))
        alone = gen.net(x[:1, :12], t[:1], frames[:1, :12], one)
    assert full.shape == x.shape
    torch.testing.assert_close(full[0, :12], alone[0], atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("cond", ["sentence", "tokens"])
def test_guidance_scale_one_is_the_conditional_prediction(text_features, cond):
    gen = _gen(text_features, gen__cond=cond)
    torch.manual_seed(0)
    for p in gen.net.parameters():  # move the null condition away from its init so the two paths differ
        p.data.add_(torch.randn_like(p) * 0.05)
    gen.net.eval()
    x, frames, text = _inputs(gen, text_features, [16, 8], 16)
    t = torch.tensor([50, 10])
    with torch.no_grad():
        cond_ = gen.net.condition(text)
        null = gen.net.condition(text, torch.ones(2, dtype=torch.bool))
        c = gen.net(x, t, frames, cond_)
        u = gen.net(x, t, frames, null)
        assert torch.equal(gen.denoise(x, t, frames, cond_, null, 1.0), c)
        torch.testing.assert_close(gen.denoise(x, t, frames, cond_, null, 2.5), u + 2.5 * (c - u), atol=1e-4,
                                   rtol=1e-4)
        torch.testing.assert_close(gen.denoise(x, t, frames, cond_, null, 0.0), u, atol=1e-5, rtol=1e-4)
    assert (c - u).abs().max() > 1e-3  # the text matters to the prediction
