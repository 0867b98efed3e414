"""The MATE alignment model: the language model's trainable rows plus the heads that exist only during alignment
(motion encoder + decoder, word-guided attention, prototype bank, sentence projection).

One `terms(batch)` call computes exactly the loss terms whose weight is non-zero (docs/method.md §9); a zero weight
costs nothing and leaves its parameters out of the graph.
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from mate.loop import to_device

from .attention import WordGuidedAttention
from .losses import cross_views, info_nce, loss_cross, loss_rec, loss_self, needed
from .motion import MotionDecoder, MotionEncoder, frame_mask
from .prior import gaussian_prior, kl_localization, token_lengths
from .prototypes import PrototypeBank


class Aligner(nn.Module):
    def __init__(self, encoder, motion_dim: int, *, hidden: int, heads: int, num_proto_words: int,
                 prototypes_per_word: int, prior: str, prior_mode: str, sigma_scale: float, prior_strength: float,
                 temperature: float):
        super().__init__()
        self.encoder = encoder
        text_dim = encoder.base_table.shape[1]
        with torch.no_grad():
            sent_dim = encoder(["a person walks"]).sentence.shape[-1]
        self.motion = MotionEncoder(motion_dim, hidden, hidden)
        self.decoder = MotionDecoder(hidden, motion_dim, hidden)
        self.attn = WordGuidedAttention(text_dim, hidden, hidden, heads, prior_mode, prior_strength)
        self.sent_proj = nn.Linear(sent_dim, hidden)
        self.bank = PrototypeBank(num_proto_words, prototypes_per_word, hidden) if num_proto_words else None
        self.prior, self.sigma_scale, self.temperature = prior, sigma_scale, temperature

    def head_parameters(self):
        return [p for n, p in self.named_parameters() if not n.startswith("encoder.")]

    # -- pieces -----------------------------------------------------------------------------------------------
    def word_vectors(self, input_ids: torch.Tensor, positions: torch.Tensor, pos_mask: torch.Tensor) -> torch.Tensor:
        """Each item's word embedding: the mean of its sub-token rows (trained rows where selected)."""
        rows = self.encoder.embedding(input_ids)  # (B, Lt, d)
        picked = rows.gather(1, positions[..., None].expand(-1, -1, rows.shape[-1]))  # (B, P, d)
        m = pos_mask[..., None].to(picked.dtype)
        return (picked * m).sum(1) / m.sum(1).clamp(min=1.0)

    def priors(self, spans: torch.Tensor, lengths: torch.Tensor, num_tokens: int) -> torch.Tensor | None:
        if self.prior == "none":
            return None
        return gaussian_prior(spans, token_lengths(lengths), self.prior, self.sigma_scale, num_tokens=num_tokens)

    def clip_and_sentence(self, motion, lengths, tokenized) -> tuple[torch.Tensor, torch.Tensor]:
        """Motion clip features and projected sentence features in the joint space (for R@1 and pair scores)."""
        clip = self.motion(motion, lengths).clip
        sent = self.sent_proj(self.encoder(batch=tokenized).sentence)
        return clip, sent

    # -- losses -----------------------------------------------------------------------------------------------
    def terms(self, batch: Mapping, weights: Mapping[str, float]) -> tuple[dict[str, torch.Tensor], dict]:
        need = needed(weights)
        batch = to_device(batch, next(self.parameters()).device)  # evaluation batches arrive on the CPU
        tok = batch["tokenized"]
        ids = tok["input_ids"]
        m = self.motion(batch["motion"], batch["lengths"])
        word = self.word_vectors(ids, batch["positions"], batch["pos_mask"])
        prior = self.priors(batch["spans"], batch["lengths"], m.tokens.shape[1])
        terms: dict[str, torch.Tensor] = {}
        extra: dict = {}
        if "cross" in need:
            pair = self.attn.pairwise(word, m.tokens, m.mask, prior)
            own, foreign_word, foreign_motion = cross_views(pair.feature)
            idx = torch.arange(len(word))
            weights_own = pair.weights[idx, idx]  # (B, heads, L)
            terms["cross"] = loss_cross(own, foreign_word, foreign_motion, batch["absent"])
        else:
            att = self.attn(word, m.tokens, m.mask, prior)
            own, weights_own = att.feature, att.weights
        extra["attention"] = weights_own.mean(1).detach()
        if "rec" in need:
            recon = self.decoder(m.clip, batch["lengths"], batch["motion"].shape[1])
            terms["rec"] = loss_rec(recon, batch["motion"], frame_mask(batch["lengths"], batch["motion"].shape[1]))
        if "self" in need and self.bank is not None:
            terms["self"] = loss_self(own, batch["proto"], self.bank, self.temperature)
        elif "self" in need:
            terms["self"] = own.new_zeros(())
        if "align" in need:
            terms["align"] = info_nce(self.attn.project_word(word), own, self.temperature, batch["same_word"])
        if "sent" in need:
            sent = self.sent_proj(self.encoder(batch=tok).sentence)
            terms["sent"] = info_nce(sent, m.clip, self.temperature, batch["same_caption"])
        if "loc" in need:
            terms["loc"] = (kl_localization(weights_own.mean(1), prior, m.mask) if prior is not None
                            else own.new_zeros(()))
        return terms, extra
