"""The localization prior on the token grid and the optional KL attention loss, on hand-made spans."""

from __future__ import annotations

import math

import pytest
import torch

from mate.align.prior import PRIOR_KINDS, gaussian_prior, kl_localization, segment_token_range, token_lengths

SPAN = [[8, 24]]  # rows 8..23: centre row 16 -> token 4; half-width 8 rows -> sigma 2 tokens at scale 1
N10 = [10]


def test_token_lengths_floor_with_at_least_one():
    assert token_lengths([37, 3, 8, 0]).tolist() == [9, 1, 2, 1]


def test_gaussian_full_peaks_on_token_c_over_4_and_is_not_truncated():
    g = gaussian_prior(SPAN, N10, "gaussian_full", 1.0)
    assert g.shape == (1, 10) and g.dtype == torch.float32
    assert int(g.argmax()) == 4 and g[0, 4].item() == pytest.approx(1.0)
    # one sigma (2 tokens) either side: exp(-1/2)
    assert g[0, 2].item() == pytest.approx(math.exp(-0.5), abs=1e-6)
    assert g[0, 6].item() == pytest.approx(math.exp(-0.5), abs=1e-6)
    # outside the segment's tokens [2, 6) it is still positive (the paper's full-sequence Gaussian)
    assert g[0, 0].item() == pytest.approx(math.exp(-2.0), abs=1e-6)
    assert (g[0, [0, 1, 6, 7, 8, 9]] > 0).all()


def test_sigma_scale_scales_the_width():
    g = gaussian_prior(SPAN, N10, "gaussian_full", 2.0)  # sigma 4 tokens
    assert g[0, 0].item() == pytest.approx(math.exp(-0.5), abs=1e-6)
    assert g[0, 8].item() == pytest.approx(math.exp(-0.5), abs=1e-6)
    narrow = gaussian_prior(SPAN, N10, "gaussian_full", 0.5)  # sigma 1 token
    assert narrow[0, 3].item() == pytest.approx(math.exp(-0.5), abs=1e-6)


def test_off_grid_centre_uses_the_fractional_token():
    g = gaussian_prior([[0, 10]], [5], "gaussian_full", 1.0)  # c_tok 1.25, sigma_tok 1.25
    expect = torch.exp(-((torch.arange(5.0) - 1.25) ** 2) / (2 * 1.25 ** 2))
    torch.testing.assert_close(g[0], expect)


def test_binary_is_the_segment_token_range_exactly():
    b = gaussian_prior(SPAN, N10, "binary", 1.0)
    assert b[0].tolist() == [0, 0, 1, 1, 1, 1, 0, 0, 0, 0]


def test_gaussian_segment_is_the_gaussian_inside_and_zero_outside():
    full = gaussian_prior(SPAN, N10, "gaussian_full", 1.0)
    seg = gaussian_prior(SPAN, N10, "gaussian_segment", 1.0)
    inside = torch.zeros(10, dtype=torch.bool)
    inside[2:6] = True
    torch.testing.assert_close(seg[0, inside], full[0, inside])
    assert (seg[0, ~inside] == 0).all() and (full[0, ~inside] > 0).all()


def test_none_is_zeros():
    z = gaussian_prior(SPAN, N10, "none", 1.0, num_tokens=12)
    assert z.shape == (1, 12) and (z == 0).all()


@pytest.mark.parametrize("kind", PRIOR_KINDS)
def test_padded_tokens_are_zero(kind):
    # clip 0 has only 6 valid tokens on a 10-token grid; its segment runs to the clip's end
    spans = [[8, 24], [0, 40]]
    g = gaussian_prior(spans, [6, 10], kind, 1.0)
    assert g.shape == (2, 10)
    assert (g[0, 6:] == 0).all()
    if kind != "none":
        assert (g[0, :6] > 0).any() and (g[1] > 0).any()


def test_short_span_keeps_the_token_of_its_centre():
    lo, hi = segment_token_range([[5, 6], [0, 1]], [10, 10])
    assert lo.tolist() == [1, 0] and hi.tolist() == [2, 1]
    b = gaussian_prior([[5, 6]], N10, "binary", 1.0)
    assert b[0].tolist() == [0, 1, 0, 0, 0, 0, 0, 0, 0, 0]


def test_bad_arguments():
    with pytest.raises(ValueError, match="prior kind"):
        gaussian_prior(SPAN, N10, "cosine", 1.0)
    with pytest.raises(ValueError, match="sigma_scale"):
        gaussian_prior(SPAN, N10, "gaussian_full", 0.0)
    with pytest.raises(ValueError, match="spans"):
        gaussian_prior([8, 24], N10, "binary", 1.0)


# ------------------------------------------------------------------------------------------------------- KL


def _mask(n_tok, big_l):
    return torch.arange(big_l)[None] < torch.as_tensor(n_tok)[:, None]


def test_kl_is_zero_when_attention_is_the_normalised_prior():
    g = gaussian_prior([[8, 24], [0, 16]], [10, 7], "gaussian_full", 1.0)
    mask = _mask([10, 7], 10)
    attn = g / g.sum(-1, keepdim=True)
    assert kl_localization(attn, g, mask).item() == pytest.approx(0.0, abs=1e-6)
    uniform = mask.float() / mask.sum(-1, keepdim=True)
    assert kl_localization(uniform, g, mask).item() > 0.05


def test_kl_known_value_and_items_without_prior_are_ignored():
    prior = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    attn = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])
    mask = torch.ones(2, 4, dtype=torch.bool)
    # p = (1/2, 1/2, 0, 0): KL = 2 * 1/2 * log((1/2) / (1/4)) = log 2; item 1 has no prior and no term
    assert kl_localization(attn, prior, mask).item() == pytest.approx(math.log(2), abs=1e-6)
    per = kl_localization(attn, prior, mask, reduction="none")
    assert per[0].item() == pytest.approx(math.log(2), abs=1e-6) and per[1].item() == 0.0
    assert kl_localization(attn, torch.zeros(2, 4), mask).item() == 0.0


def test_kl_averages_heads_and_ignores_prior_on_padding():
    prior = torch.tensor([[1.0, 1.0, 5.0]])  # the 5 sits on a padded token
    mask = torch.tensor([[True, True, False]])
    heads = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])  # mean over heads = (1/2, 1/2, 0)
    assert kl_localization(heads, prior, mask).item() == pytest.approx(0.0, abs=1e-6)
