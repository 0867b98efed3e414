"""Trainable word-embedding rows over a frozen table: the one thing MATE changes in a language model.

The selected rows are a small parameter of their own (n x d), looked up in place of the frozen table's rows, so
gradients and optimizer state scale with the number of trained tokens, not the vocabulary (CLIP's table is 49k x 512;
HumanML3D's captions use ~6k of its rows).
"""

from __future__ import annotations

import torch
from torch import nn


class RowOverrideEmbedding(nn.Module):
    """Drop-in replacement for a model's input `nn.Embedding`: frozen table, with `ids` served from `rows`."""

    def __init__(self, base: nn.Embedding, ids: torch.Tensor | list[int]):
        super().__init__()
        self.base = base
        self.base.weight.requires_grad_(False)
        ids = torch.as_tensor(ids, dtype=torch.long).unique(sorted=True)
        if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= base.num_embeddings):
            raise ValueError(f"token ids must lie in [0, {base.num_embeddings}); got {ids.min()}..{ids.max()}")
        self.register_buffer("ids", ids, persistent=False)
        lookup = torch.full((base.num_embeddings,), -1, dtype=torch.long)
        lookup[ids] = torch.arange(len(ids))
        self.register_buffer("lookup", lookup, persistent=False)
        self.rows = nn.Parameter(base.weight.detach()[ids].clone())

    # Attributes some model code reads off its input embedding.
    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    @property
    def embedding_dim(self) -> int:
        return self.base.embedding_dim

    @property
    def padding_idx(self) -> int | None:
        return self.base.padding_idx

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        out = self.base(input_ids)
        slot = self.lookup[input_ids]
        hit = slot >= 0
        if not bool(hit.any()):
            return out
        return torch.where(hit[..., None], self.rows[slot.clamp(min=0)].to(out.dtype), out)

    def merged_table(self) -> torch.Tensor:
        """The full table with the trained rows written in (for export)."""
        table = self.base.weight.detach().clone()
        table[self.ids] = self.rows.detach().to(table.dtype)
        return table

    def reset(self) -> None:
        with torch.no_grad():
            self.rows.copy_(self.base.weight[self.ids])
