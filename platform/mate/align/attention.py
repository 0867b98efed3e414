"""Word-guided multi-head attention (docs/method.md §7): a word's own motion feature f_w^m.

    f_w^m = MultiHead(Q = Proj(WE(w)), K = (1 + omega G) * F, V = F)

WE(w) is the word's embedding (the mean of its sub-token rows, (B, d_text)); Proj maps it into the joint space D
(`project_word`, also the word side of L_align); F (B, L, H) are the motion encoder's token features with a mask;
G (B, L) is the localization prior on the same grid (`mate.align.prior`), omega = `align.prior_strength`.
`align.prior_mode` picks how G enters:

- ``key_scale`` (the paper's form): the keys are built from (1 + omega G_tau) F_tau through a *bias-free* key
  projection, so K_tau = (1 + omega G_tau) W_k F_tau exactly, and each logit is q.k_tau scaled by (1 + omega G_tau).
  We compute it that way (scaling the logits), which is the same number and lets one key projection serve every
  word-motion pair in `pairwise`.
- ``logit_bias`` (ours): logit_tau = q.k_tau / sqrt(d) + omega G_tau.

Caveat (docs/method.md §7, ours): scaling a logit by (1 + omega G) > 1 amplifies an in-segment token only where
q.k_tau > 0 and *suppresses* it where q.k_tau < 0 (a negative logit becomes more negative), so under ``key_scale`` the
prior raises in-segment attention only when the query already likes those tokens; ``logit_bias`` raises it whatever
the sign. Ablate the two.

Values use F unscaled (V = F). Padded tokens (mask False) get weight 0; every clip needs at least one valid token.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

PRIOR_MODES = ("key_scale", "logit_bias")

__all__ = ["Attended", "PRIOR_MODES", "WordGuidedAttention"]


class Attended(NamedTuple):
    feature: torch.Tensor  # (..., D) the word's motion feature f_w^m
    weights: torch.Tensor  # (..., heads, L) attention weights per head

    @property
    def mean_weights(self) -> torch.Tensor:
        """(..., L) attention weights averaged over heads (what plots and L_loc read)."""
        return self.weights.mean(-2)


class WordGuidedAttention(nn.Module):
    """Query from the word, keys and values from the motion tokens, with the localization prior.

    text_dim: d_text of the word embedding; motion_dim: H of the token features; dim: D, the joint space of
    f_w^m, Proj(WE(w)), the prototypes and the clip feature; heads: must divide dim.
    """

    def __init__(self, text_dim: int, motion_dim: int, dim: int, heads: int = 4, prior_mode: str = "key_scale",
                 prior_strength: float = 1.0):
        super().__init__()
        if dim % heads:
            raise ValueError(f"heads ({heads}) must divide dim ({dim})")
        if prior_mode not in PRIOR_MODES:
            raise ValueError(f"prior_mode must be one of {PRIOR_MODES}, got {prior_mode!r}")
        self.heads, self.dim, self.head_dim = heads, dim, dim // heads
        self.prior_mode = prior_mode
        self.prior_strength = float(prior_strength)
        self.word_proj = nn.Linear(text_dim, dim)  # Proj(WE(w))
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(motion_dim, dim, bias=False)  # bias-free: key_scale is then exact
        self.v = nn.Linear(motion_dim, dim)
        self.out = nn.Linear(dim, dim)

    def project_word(self, word: torch.Tensor) -> torch.Tensor:
        """Proj(WE(w)): (..., d_text) -> (..., D)."""
        return self.word_proj(word)

    def _queries(self, word: torch.Tensor) -> torch.Tensor:  # (Bw, heads, d)
        return self.q(self.project_word(word)).view(len(word), self.heads, self.head_dim)

    def _keys_values(self, feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # (Bm, heads, L, d) each
        b, big_l, _ = feats.shape
        k = self.k(feats).view(b, big_l, self.heads, self.head_dim).transpose(1, 2)
        v = self.v(feats).view(b, big_l, self.heads, self.head_dim).transpose(1, 2)
        return k, v

    def _weights(self, logits: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor | None) -> torch.Tensor:
        """logits (..., heads, L) = q.k / sqrt(d); mask and prior broadcast to (..., 1, L)."""
        if prior is not None and self.prior_strength != 0.0:
            g = self.prior_strength * prior.to(logits.dtype).unsqueeze(-2)
            logits = logits * (1.0 + g) if self.prior_mode == "key_scale" else logits + g
        logits = logits.masked_fill(~mask.unsqueeze(-2), torch.finfo(logits.dtype).min)
        return logits.softmax(-1)

    def forward(self, word: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor,
                prior: torch.Tensor | None = None) -> Attended:
        """Word i on motion i. word (B, d_text), feats (B, L, H), mask (B, L) bool, prior (B, L) or None.

        Returns f_w^m (B, D) and the weights (B, heads, L)."""
        q = self._queries(word)
        k, v = self._keys_values(feats)
        logits = torch.einsum("bhd,bhld->bhl", q, k) / math.sqrt(self.head_dim)
        w = self._weights(logits, mask, prior)
        f = torch.einsum("bhl,bhld->bhd", w, v).reshape(len(word), self.dim)
        return Attended(self.out(f), w)

    def pairwise(self, word: torch.Tensor, feats: torch.Tensor, mask: torch.Tensor,
                 prior: torch.Tensor | None = None) -> Attended:
        """Every word on every motion: f[j, i] = f^{m_i}_{w_j}, shapes (Bw, Bm, D) and weights (Bw, Bm, heads, L).

        word (Bw, d_text), feats (Bm, L, H), mask (Bm, L). prior: None, (Bm, L) (one prior per motion, used for
        every word on it) or (Bw, Bm, L) (one per pair). The diagonal equals `forward` with prior[i, i] (or
        prior[i]). Cost Bw Bm L D: fine for batches up to ~64. `mate.align.losses.cross_views` turns the result
        into L_cross's inputs.
        """
        q = self._queries(word)
        k, v = self._keys_values(feats)
        logits = torch.einsum("whd,mhld->wmhl", q, k) / math.sqrt(self.head_dim)
        w = self._weights(logits, mask[None], prior)
        f = torch.einsum("wmhl,mhld->wmhd", w, v).reshape(len(word), len(feats), self.dim)
        return Attended(self.out(f), w)
