"""MATE's losses (docs/method.md §9), each a scalar; false-negative masks are inputs, computed by the caller.

    L = w_rec L_rec + w_self L_self + w_cross L_cross + w_align L_align + w_sent L_sent (+ w_loc L_loc)

A weight of 0 means the term is not computed at all (not multiplied by 0: that would still run its forward pass, put
its parameters in the graph, and turn a NaN into a NaN loss). The trainer's pattern:

    weights = {"rec": cfg["align.w_rec"], ...}          # or weights_from_config(cfg)
    want = needed(weights)
    terms = {}
    if "self" in want:
        terms["self"] = loss_self(f_own, word_index, bank, tau)
    ...
    loss = total_loss(terms, weights)                    # refuses a needed term that is missing

L_loc (the optional KL between the prior and the attention) is `mate.align.prior.kl_localization`, re-exported here.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from .prior import kl_localization
from .prototypes import PrototypeBank

TERMS = ("rec", "self", "cross", "align", "sent", "loc")

__all__ = ["TERMS", "cross_views", "info_nce", "kl_localization", "loss_cross", "loss_rec", "loss_self", "needed",
           "total_loss", "weights_from_config"]


def loss_self(features: torch.Tensor, word_index: torch.Tensor, bank: PrototypeBank,
              temperature: float) -> torch.Tensor:
    """L_self = mean_b CE(softmax_w s_w(f_b), target = w_b), s_w = logsumexp_k cos(f_b, p_{w,k}) / tau.

    features (B, D) = f^{m_b}_{w_b}; word_index (B,) into the bank, -1 for a word without prototypes (no term).
    The mean runs over the items that have a term; 0 when none has.
    """
    word_index = torch.as_tensor(word_index, device=features.device).long()
    keep = word_index >= 0
    if not bool(keep.any()):
        return features.new_zeros(())
    logits = bank.logits(features[keep], temperature)
    return nn.functional.cross_entropy(logits, word_index[keep])


def cross_views(pairwise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """From P[j, i] = f^{m_i}_{w_j} (B words x B motions x D, `WordGuidedAttention.pairwise`) to L_cross's inputs:
    f_own[i] = f^{m_i}_{w_i}, foreign_word[i, j] = f^{m_i}_{w_j}, foreign_motion[i, j] = f^{m_j}_{w_i}."""
    return pairwise.diagonal(0, 0, 1).T, pairwise.transpose(0, 1), pairwise


def loss_cross(f_own: torch.Tensor, f_foreign_word_on_own_motion: torch.Tensor | None,
               f_own_word_on_foreign_motion: torch.Tensor | None, valid_pairs: torch.Tensor) -> torch.Tensor:
    """L_cross = mean over valid (i, j) of |cos(f^{m_i}_{w_i}, f^{m_i}_{w_j})| + |cos(f^{m_i}_{w_i}, f^{m_j}_{w_i})|.

    f_own (B, D) = f^{m_i}_{w_i}; f_foreign_word_on_own_motion (B, B, D), [i, j] = f^{m_i}_{w_j};
    f_own_word_on_foreign_motion (B, B, D), [i, j] = f^{m_j}_{w_i} (`cross_views` builds all three; either of the
    last two may be None to leave that half out). valid_pairs (B, B) bool: motion i does not contain word j's meaning
    and motion j not word i's (the caller's false-negative rule); the diagonal is never used. Range [0, 2]: 0 when
    the foreign features are orthogonal to the true one, 2 when identical. 0 when no pair is valid.
    """
    b = len(f_own)
    valid = torch.as_tensor(valid_pairs, device=f_own.device).bool() & ~torch.eye(b, dtype=torch.bool,
                                                                                   device=f_own.device)
    if not bool(valid.any()):
        return f_own.new_zeros(())
    own = nn.functional.normalize(f_own, dim=-1)[:, None]  # (B, 1, D)
    total = f_own.new_zeros(())
    for other in (f_foreign_word_on_own_motion, f_own_word_on_foreign_motion):
        if other is not None:
            cos = (own * nn.functional.normalize(other, dim=-1)).sum(-1)  # (B, B)
            total = total + cos.abs()[valid].sum()
    return total / valid.sum()


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float,
             not_negative: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE: 1/2 [CE(S, I) + CE(S^T, I)], S_ij = cos(a_i, b_j) / tau, positives on the diagonal.

    not_negative (B, B) bool: pairs (i != j) that are not really negatives (L_align: the same word twice in the
    batch; L_sent: identical captions or the same clip) drop out of both directions (S_ij is -inf in row i of S
    and in row j of S^T); the diagonal is always the positive.
    """
    s = nn.functional.normalize(a, dim=-1) @ nn.functional.normalize(b, dim=-1).T / temperature
    n = len(s)
    target = torch.arange(n, device=s.device)
    if not_negative is not None:
        drop = torch.as_tensor(not_negative, device=s.device).bool() & ~torch.eye(n, dtype=torch.bool, device=s.device)
        s = s.masked_fill(drop, float("-inf"))
    return 0.5 * (nn.functional.cross_entropy(s, target) + nn.functional.cross_entropy(s.T, target))


def loss_rec(recon: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """L_rec = sum_{b, t valid} ||recon[b, t] - target[b, t]||^2 / (D * #valid rows): the MSE over valid rows.

    recon, target (B, T, D) (normalised features); mask (B, T) bool, True on valid rows."""
    m = torch.as_tensor(mask, device=recon.device).to(recon.dtype)
    err = ((recon - target) ** 2).mean(-1)
    return (err * m).sum() / m.sum().clamp(min=1.0)


def needed(weights: Mapping[str, float]) -> set[str]:
    """The terms the trainer must compute: those with a non-zero weight."""
    unknown = set(weights) - set(TERMS)
    if unknown:
        raise ValueError(f"unknown loss term(s) {sorted(unknown)}; known: {TERMS}")
    for name, w in weights.items():
        if not w >= 0:
            raise ValueError(f"loss weight {name} must be >= 0, got {w}")
    return {name for name, w in weights.items() if w != 0}


def weights_from_config(config: Mapping) -> dict[str, float]:
    """{term: weight} from the flat config's `align.w_<term>` keys (all six must be there)."""
    missing = [f"align.w_{name}" for name in TERMS if f"align.w_{name}" not in config]
    if missing:
        raise ValueError(f"config lacks the loss weight key(s) {missing}")
    return {name: float(config[f"align.w_{name}"]) for name in TERMS}


def total_loss(terms: Mapping[str, torch.Tensor | None], weights: Mapping[str, float]) -> torch.Tensor:
    """sum over needed(weights) of weight x term. A term with weight 0 is never added (even when given), so its
    parameters stay out of the graph; a needed term that is missing or None is an error."""
    want = needed(weights)
    missing = sorted(name for name in want if terms.get(name) is None)
    if missing:
        raise ValueError(f"loss term(s) {missing} have a non-zero weight but were not computed")
    if not want:
        raise ValueError("every loss weight is 0: nothing to train")
    names = sorted(want)
    total = weights[names[0]] * terms[names[0]]
    for name in names[1:]:
        total = total + weights[name] * terms[name]
    return total
