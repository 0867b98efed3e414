"""Word-guided attention (prior modes, pairwise form, masking) and the motion encoder/decoder on hand-made inputs."""

from __future__ import annotations

import pytest
import torch

from mate.align.attention import WordGuidedAttention
from mate.align.losses import cross_views, loss_rec
from mate.align.motion import MotionDecoder, MotionEncoder, frame_mask
from mate.align.prior import gaussian_prior

D = 8


def _identity_attention(mode: str, strength: float) -> WordGuidedAttention:
    """One head; word -> query and features -> keys are identities, so logit_tau = u . F_tau / sqrt(D)."""
    att = WordGuidedAttention(D, D, D, heads=1, prior_mode=mode, prior_strength=strength)
    with torch.no_grad():
        for lin in (att.word_proj, att.q, att.k, att.v, att.out):
            lin.weight.copy_(torch.eye(D))
            if lin.bias is not None:
                lin.bias.zero_()
    return att


def _case(sign: float):
    """A word u and 10 tokens F_tau = sign * a_tau * u with a_tau > 0: q.k has the given sign on every token."""
    u = torch.zeros(1, D)
    u[0, 0] = 2.0
    a = torch.linspace(0.5, 1.5, 10)
    feats = sign * a[None, :, None] * u[:, None, :]
    mask = torch.ones(1, 10, dtype=torch.bool)
    prior = torch.zeros(1, 10)
    prior[0, 3:6] = 1.0
    return u, feats, mask, prior


def _in_span(att, u, feats, mask, prior):
    return att(u, feats, mask, prior).mean_weights[0, 3:6].sum().item()


def test_key_scale_raises_in_span_attention_when_q_dot_k_is_positive_and_lowers_it_when_negative():
    for sign, should_rise in ((1.0, True), (-1.0, False)):
        u, feats, mask, prior = _case(sign)
        plain = _in_span(_identity_attention("key_scale", 0.0), u, feats, mask, prior)
        guided = _in_span(_identity_attention("key_scale", 2.0), u, feats, mask, prior)
        assert (guided > plain + 0.05) if should_rise else (guided < plain - 0.05), (sign, plain, guided)


def test_logit_bias_raises_in_span_attention_whatever_the_sign():
    for sign in (1.0, -1.0):
        u, feats, mask, prior = _case(sign)
        plain = _in_span(_identity_attention("logit_bias", 0.0), u, feats, mask, prior)
        guided = _in_span(_identity_attention("logit_bias", 2.0), u, feats, mask, prior)
        assert guided > plain + 0.05, (sign, plain, guided)


def _random_inputs(b=3, big_l=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    word = torch.randn(b, 12, generator=g)
    feats = torch.randn(b, big_l, 10, generator=g)
    n_tok = torch.tensor([7, 4, 2][:b])
    mask = torch.arange(big_l)[None] < n_tok[:, None]
    prior = gaussian_prior([[0, 28], [4, 12], [0, 8]][:b], n_tok, "gaussian_full", 1.0, num_tokens=big_l)
    return word, feats, mask, prior


@pytest.mark.parametrize("mode", ["key_scale", "logit_bias"])
def test_prior_strength_zero_is_plain_attention(mode):
    torch.manual_seed(0)
    word, feats, mask, prior = _random_inputs()
    att = WordGuidedAttention(12, 10, 16, heads=4, prior_mode=mode, prior_strength=0.0)
    plain = att(word, feats, mask, None)
    zero = att(word, feats, mask, prior)
    torch.testing.assert_close(zero.feature, plain.feature)
    torch.testing.assert_close(zero.weights, plain.weights)
    att.prior_strength = 1.5
    assert not torch.allclose(att(word, feats, mask, prior).weights, plain.weights)


def test_key_scale_is_scaling_the_features_before_a_bias_free_key_projection():
    torch.manual_seed(0)
    word, feats, mask, prior = _random_inputs()
    att = WordGuidedAttention(12, 10, 16, heads=4, prior_mode="key_scale", prior_strength=1.5)
    assert att.k.bias is None
    guided = att(word, feats, mask, prior).weights
    scaled = att(word, (1 + 1.5 * prior)[..., None] * feats, mask, None).weights  # K from (1 + w G) F, no prior
    torch.testing.assert_close(guided, scaled)


def test_padding_gets_no_weight_and_does_not_change_the_feature():
    torch.manual_seed(0)
    word, feats, mask, prior = _random_inputs()
    att = WordGuidedAttention(12, 10, 16, heads=4)
    out = att(word, feats, mask, prior)
    assert out.weights.shape == (3, 4, 7) and out.feature.shape == (3, 16) and out.mean_weights.shape == (3, 7)
    assert (out.weights[~mask[:, None].expand_as(out.weights)] == 0).all()
    torch.testing.assert_close(out.weights.sum(-1), torch.ones(3, 4))
    noisy = feats.clone()
    noisy[~mask] = 1e3
    torch.testing.assert_close(att(word, noisy, mask, prior).feature, out.feature)


@pytest.mark.parametrize("mode", ["key_scale", "logit_bias"])
def test_pairwise_diagonal_equals_forward(mode):
    torch.manual_seed(0)
    word, feats, mask, prior = _random_inputs()
    att = WordGuidedAttention(12, 10, 16, heads=4, prior_mode=mode, prior_strength=1.0)
    own = att(word, feats, mask, prior)
    per_motion = att.pairwise(word, feats, mask, prior)
    assert per_motion.feature.shape == (3, 3, 16) and per_motion.weights.shape == (3, 3, 4, 7)
    f_own, foreign_word, _ = cross_views(per_motion.feature)
    torch.testing.assert_close(f_own, own.feature)
    # an off-diagonal entry is word j on motion i: forward with word j's embedding on motion i
    alone = att(word[[2]], feats[[0]], mask[[0]], prior[[0]])
    torch.testing.assert_close(foreign_word[0, 2], alone.feature[0])
    # one prior per pair: its diagonal is what counts for the own features
    per_pair = torch.zeros(3, 3, 7)
    per_pair[range(3), range(3)] = prior
    torch.testing.assert_close(cross_views(att.pairwise(word, feats, mask, per_pair).feature)[0], own.feature)


def test_bad_configuration():
    with pytest.raises(ValueError, match="prior_mode"):
        WordGuidedAttention(4, 4, 8, prior_mode="query_scale")
    with pytest.raises(ValueError, match="divide"):
        WordGuidedAttention(4, 4, 10, heads=4)


# ---------------------------------------------------------------------------------------------------- motion


def test_encoder_shapes_and_token_mask():
    torch.manual_seed(0)
    enc = MotionEncoder(6, hidden=16, dim=8, blocks=2)
    out = enc(torch.randn(3, 37, 6), torch.tensor([37, 20, 3]))
    assert out.tokens.shape == (3, 10, 16) and out.clip.shape == (3, 8)
    assert out.mask.sum(1).tolist() == [9, 5, 1]
    assert (out.tokens[~out.mask] == 0).all()


@pytest.mark.parametrize("context_layers", [0, 1])
def test_a_clip_encodes_the_same_alone_or_padded_in_a_batch(context_layers):
    torch.manual_seed(0)
    enc = MotionEncoder(6, hidden=16, dim=8, blocks=2, context_layers=context_layers).eval()
    clip = torch.randn(1, 22, 6)
    alone = enc(clip, torch.tensor([22]))
    batch = torch.randn(2, 41, 6) * 5  # garbage past clip 0's length
    batch[0, :22] = clip[0]
    together = enc(batch, torch.tensor([22, 41]))
    n = int(alone.mask.sum())
    torch.testing.assert_close(together.tokens[0, :n], alone.tokens[0, :n], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(together.clip[0], alone.clip[0], atol=1e-5, rtol=1e-5)


def test_decoder_shapes_and_batch_independence():
    torch.manual_seed(0)
    dec = MotionDecoder(8, 6, hidden=16, anchors=4)
    f = torch.randn(2, 8)
    out = dec(f, torch.tensor([13, 30]))
    assert out.shape == (2, 30, 6)
    torch.testing.assert_close(out[0, :13], dec(f[[0]], torch.tensor([13]))[0], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="anchors"):
        MotionDecoder(8, 6, anchors=1)


def test_encoder_decoder_learn_to_reconstruct():
    torch.manual_seed(0)
    t = torch.linspace(0, 1, 24)
    target = torch.stack([torch.stack([torch.sin(6 * t + k), torch.cos(3 * t * (k + 1))], -1) for k in range(4)])
    lengths = torch.tensor([24, 24, 16, 20])
    mask = frame_mask(lengths, 24)
    enc, dec = MotionEncoder(2, hidden=32, dim=16, blocks=1), MotionDecoder(16, 2, hidden=32, anchors=8, blocks=1)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=3e-3)
    losses = []
    for _ in range(60):
        loss = loss_rec(dec(enc(target, lengths).clip, lengths, 24), target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    assert all(p.grad is not None for p in enc.parameters())  # every encoder weight is on f_m's path
