"""MATE's losses on constructed cases with known values, and the zero-weight rule (a term with weight 0 is not in
the graph)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mate.align.losses import (TERMS, cross_views, info_nce, loss_cross, loss_rec, loss_self, needed, total_loss,
                               weights_from_config)
from mate.align.prototypes import PrototypeBank

# ---------------------------------------------------------------------------------------------------- InfoNCE


def test_info_nce_aligned_orthogonal_pairs_at_low_temperature_is_zero():
    a = torch.eye(4) * 3.0  # norms do not matter: cosine
    assert info_nce(a, torch.eye(4), 0.01).item() == pytest.approx(0.0, abs=1e-6)


def test_info_nce_identical_rows_is_log_b():
    a = torch.ones(5, 8)
    assert info_nce(a, torch.ones(5, 8), 0.07).item() == pytest.approx(math.log(5), abs=1e-5)


def _reference_info_nce(a, b, tau, drop):
    """Loop form: row i of S (a_i against every b_j) skips the b_j with drop[i][j]; row i of S^T (b_i against
    every a_j) skips the a_j with drop[j][i]."""
    s = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).T / tau
    n = len(a)
    total = 0.0
    for i in range(n):
        for row, skip in ((s[i], [drop[i][j] for j in range(n)]), (s[:, i], [drop[j][i] for j in range(n)])):
            keep = [j for j in range(n) if j == i or not skip[j]]
            total += (torch.logsumexp(row[keep], 0) - row[i]).item()
    return total / (2 * n)


def test_info_nce_masking_a_false_negative_drops_that_column():
    torch.manual_seed(0)
    a, b = torch.randn(4, 6), torch.randn(4, 6)
    drop = torch.zeros(4, 4, dtype=torch.bool)
    drop[0, 2] = True
    drop[0, 0] = True  # the diagonal is always the positive: ignored
    plain = info_nce(a, b, 0.5)
    masked = info_nce(a, b, 0.5, drop)
    assert masked.item() == pytest.approx(_reference_info_nce(a, b, 0.5, drop.tolist()), abs=1e-5)
    assert plain.item() == pytest.approx(_reference_info_nce(a, b, 0.5, [[False] * 4] * 4), abs=1e-5)
    assert masked.item() != pytest.approx(plain.item(), abs=1e-4)
    # row 0 of the a -> b direction is exactly the CE computed without column 2
    s = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).T / 0.5
    row0 = nn.functional.cross_entropy(s[0, [0, 1, 3]][None], torch.tensor([0]))
    rest = nn.functional.cross_entropy(s[1:], torch.arange(1, 4), reduction="sum")
    cols = nn.functional.cross_entropy(s.T.masked_fill(drop.T & ~torch.eye(4, dtype=torch.bool), float("-inf")),
                                       torch.arange(4), reduction="sum")
    assert masked.item() == pytest.approx(((row0 + rest) / 4 + cols / 4).item() / 2, abs=1e-5)


# ---------------------------------------------------------------------------------------------------- L_self


def _bank(vectors):
    bank = PrototypeBank(len(vectors), len(vectors[0]), len(vectors[0][0]))
    with torch.no_grad():
        bank.prototypes.copy_(torch.tensor(vectors, dtype=torch.float32))
    return bank


def test_loss_self_is_lower_when_the_feature_is_its_prototype():
    bank = _bank([[[1.0, 0, 0]], [[0, 1.0, 0]], [[0, 0, 1.0]]])
    f = torch.tensor([[0, 2.0, 0]])  # = word 1's prototype (up to norm)
    right = loss_self(f, torch.tensor([1]), bank, 0.1)
    wrong = loss_self(f, torch.tensor([0]), bank, 0.1)
    assert right.item() < 1e-3 < wrong.item()
    assert wrong.item() == pytest.approx(10.0, abs=1e-3)  # (1 - 0) / 0.1, the rest of the softmax negligible


def test_loss_self_skips_words_without_prototypes():
    torch.manual_seed(0)
    bank = PrototypeBank(4, 2, 8)
    f = torch.randn(3, 8)
    both = loss_self(f, torch.tensor([1, -1, 3]), bank, 0.07)
    only = loss_self(f[[0, 2]], torch.tensor([1, 3]), bank, 0.07)
    assert both.item() == pytest.approx(only.item(), abs=1e-6)
    assert loss_self(f, torch.tensor([-1, -1, -1]), bank, 0.07).item() == 0.0


def test_logsumexp_gives_gradient_to_every_prototype_of_the_word():
    torch.manual_seed(0)
    bank = PrototypeBank(3, 4, 8)
    loss_self(torch.randn(1, 8), torch.tensor([2]), bank, 0.07).backward()
    per_proto = bank.prototypes.grad[2].norm(dim=-1)
    assert (per_proto > 1e-6).all()  # all m = 4 of word 2's prototypes move (a hard max would move one)


def test_one_prototype_per_word_gives_the_papers_cosine_over_tau():
    bank = _bank([[[1.0, 0]], [[0.6, 0.8]]])
    logits = bank.logits(torch.tensor([[1.0, 0.0]]), 0.5)
    torch.testing.assert_close(logits, torch.tensor([[2.0, 1.2]]))


def test_prototype_usage_counts_the_winner_per_word():
    bank = _bank([[[1.0, 0, 0, 0], [0, 1.0, 0, 0]], [[0, 0, 1.0, 0], [0, 0, 0, 1.0]]])
    f = torch.tensor([[0, 1.0, 0, 0], [0, 0, 1.0, 0.1], [1.0, 0, 0, 0], [0, 1.0, 0, 0]])
    idx = torch.tensor([0, 1, -1, 0])
    assert bank.winners(f, idx).tolist() == [1, 0, -1, 1]
    assert bank.usage_counts(f, idx).tolist() == [[0, 2], [1, 0]]


# ---------------------------------------------------------------------------------------------------- L_cross


def test_loss_cross_zero_for_orthogonal_two_for_identical():
    own = torch.eye(3)
    valid = torch.ones(3, 3, dtype=torch.bool)
    ortho = torch.zeros(3, 3, 3)
    for i in range(3):
        for j in range(3):
            ortho[i, j] = torch.roll(own[i], 1)  # orthogonal to own[i]
    assert loss_cross(own, ortho, ortho, valid).item() == pytest.approx(0.0, abs=1e-7)
    same = own[:, None].expand(3, 3, 3)
    assert loss_cross(own, same, same, valid).item() == pytest.approx(2.0, abs=1e-6)
    assert loss_cross(own, -same, same, valid).item() == pytest.approx(2.0, abs=1e-6)  # |cos|
    assert loss_cross(own, same, None, valid).item() == pytest.approx(1.0, abs=1e-6)


def test_loss_cross_uses_only_valid_off_diagonal_pairs():
    own = torch.eye(3)
    other = torch.zeros(3, 3, 3)
    other[0, 1] = own[0]  # pair (0, 1) identical; every other entry is the zero vector (cos 0)
    valid = torch.eye(3, dtype=torch.bool)
    assert loss_cross(own, other, other, valid).item() == 0.0  # the diagonal alone counts nothing
    valid[0, 1] = True
    valid[2, 0] = True
    assert loss_cross(own, other, other, valid).item() == pytest.approx(1.0, abs=1e-6)  # (2 + 0) / 2 pairs


def test_cross_views_index_convention():
    b, d = 3, 2
    pairwise = torch.zeros(b, b, d)  # pairwise[j, i] = f^{m_i}_{w_j}, encoded as (word j, motion i)
    for j in range(b):
        for i in range(b):
            pairwise[j, i] = torch.tensor([j, i], dtype=torch.float32)
    own, foreign_word, foreign_motion = cross_views(pairwise)
    assert own.tolist() == [[0, 0], [1, 1], [2, 2]]
    assert foreign_word[0, 2].tolist() == [2, 0]  # word 2 on motion 0
    assert foreign_motion[0, 2].tolist() == [0, 2]  # word 0 on motion 2


# ---------------------------------------------------------------------------------------------------- L_rec


def test_loss_rec_masked_mse_over_valid_rows():
    target = torch.zeros(2, 4, 3)
    recon = torch.zeros(2, 4, 3)
    recon[0, :2] = 1.0  # valid rows of clip 0: error 1
    recon[0, 3] = 100.0  # padded
    recon[1, 3] = 100.0  # padded
    mask = torch.tensor([[True, True, True, False], [True, True, True, False]])
    assert loss_rec(recon, target, mask).item() == pytest.approx(2 / 6, abs=1e-6)


# ---------------------------------------------------------------------------------------------------- total


def test_needed_and_weights():
    assert needed({"rec": 1.0, "self": 0.0, "sent": 0.5}) == {"rec", "sent"}
    with pytest.raises(ValueError, match="unknown"):
        needed({"recon": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        needed({"rec": -1.0})
    cfg = {f"align.w_{t}": 1.0 for t in TERMS} | {"align.w_loc": 0.0}
    assert needed(weights_from_config(cfg)) == set(TERMS) - {"loc"}
    with pytest.raises(ValueError, match="align.w_loc"):
        weights_from_config({f"align.w_{t}": 1.0 for t in TERMS if t != "loc"})


def test_zero_weight_term_stays_out_of_the_graph():
    p_rec, p_self = nn.Parameter(torch.ones(3)), nn.Parameter(torch.ones(3))
    weights = {"rec": 2.0, "self": 0.0}
    terms = {"rec": (p_rec ** 2).sum(), "self": (p_self ** 2).sum() * float("nan")}  # even given, even NaN
    total = total_loss(terms, weights)
    assert total.item() == pytest.approx(6.0)
    total.backward()
    assert p_self.grad is None
    torch.testing.assert_close(p_rec.grad, torch.full((3,), 4.0))


def test_trainer_pattern_computes_only_needed_terms():
    calls = []

    def term(name):
        calls.append(name)
        return torch.tensor(1.0, requires_grad=True)

    weights = {"rec": 1.0, "self": 0.0, "cross": 0.5, "align": 0.0, "sent": 1.0, "loc": 0.0}
    want = needed(weights)
    terms = {name: term(name) for name in TERMS if name in want}
    assert total_loss(terms, weights).item() == pytest.approx(2.5)
    assert sorted(calls) == ["cross", "rec", "sent"]


def test_total_loss_refuses_a_missing_needed_term():
    with pytest.raises(ValueError, match="cross"):
        total_loss({"rec": torch.tensor(1.0), "cross": None}, {"rec": 1.0, "cross": 1.0})
    with pytest.raises(ValueError, match="nothing to train"):
        total_loss({}, {"rec": 0.0})
