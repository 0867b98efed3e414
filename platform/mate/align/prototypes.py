"""Motion prototypes (docs/method.md §8): m learnable vectors per word of the prototype vocabulary.

The paper has one prototype per vocabulary word; `align.prototype_vocab` (N words) and `align.prototypes_per_word`
(m) make the count a knob. A word's score against a feature f is a soft maximum over its m prototypes

    s_w(f) = logsumexp_k ( cos(f, p_{w,k}) / tau ),   k = 1..m

so every prototype receives gradient (softmax-weighted) where a hard max would train only the winner. With m = 1 it
is the paper's cos(f, p_w) / tau; with m > 1 every word's score carries the same + log m at most, which a
cross-entropy over words does not see. Words outside the prototype vocabulary have index -1.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["PrototypeBank"]


class PrototypeBank(nn.Module):
    def __init__(self, num_words: int, per_word: int = 1, dim: int = 128):
        super().__init__()
        if num_words < 1 or per_word < 1:
            raise ValueError(f"a prototype bank needs num_words >= 1 and per_word >= 1, got {num_words}, {per_word}")
        self.num_words, self.per_word, self.dim = num_words, per_word, dim
        self.prototypes = nn.Parameter(nn.functional.normalize(torch.randn(num_words, per_word, dim), dim=-1))

    def similarities(self, features: torch.Tensor) -> torch.Tensor:
        """cos(f_b, p_{w,k}): (B, D) -> (B, N, m)."""
        f = nn.functional.normalize(features, dim=-1)
        p = nn.functional.normalize(self.prototypes, dim=-1)
        return torch.einsum("bd,nmd->bnm", f, p)

    def logits(self, features: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
        """Word scores s_w(f) = logsumexp_k cos(f, p_{w,k}) / tau: (B, D) -> (B, N)."""
        return torch.logsumexp(self.similarities(features) / temperature, dim=-1)

    @torch.no_grad()
    def winners(self, features: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
        """Which of its word's m prototypes each feature is closest to: (B,) in [0, m), -1 where word_index is -1."""
        word_index = torch.as_tensor(word_index, device=features.device).long()
        sims = self.similarities(features)  # (B, N, m)
        own = sims[torch.arange(len(sims), device=sims.device), word_index.clamp(min=0)]  # (B, m)
        return torch.where(word_index >= 0, own.argmax(-1), torch.full_like(word_index, -1))

    @torch.no_grad()
    def usage_counts(self, features: torch.Tensor, word_index: torch.Tensor) -> torch.Tensor:
        """(N, m) int64: how often each prototype wins for its own word in this batch (accumulate across batches
        for the prototype-usage plot; a prototype that never wins is dead)."""
        word_index = torch.as_tensor(word_index, device=features.device).long()
        win = self.winners(features, word_index)
        keep = word_index >= 0
        flat = word_index[keep] * self.per_word + win[keep]
        counts = torch.bincount(flat, minlength=self.num_words * self.per_word)
        return counts.view(self.num_words, self.per_word)
