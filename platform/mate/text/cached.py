"""Frozen text features computed once per dataset and stored in the workspace.

The retrieval evaluator reads the *base* model's features (it never sees MATE rows); a generator reads the features of
the encoder it is trained with (base or aligned rows, frozen while it trains). Recomputing them per trial would cost
more than the trial. Keyed by the model folder's hash, its family, the token
limit and the exact caption list, written temp-then-rename under a lock (mate.cache).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from mate.cache import content_hash, get_or_build


@dataclass
class FrozenFeatures:
    captions: list[str]
    sentence: torch.Tensor  # (N, S) float32
    tokens: torch.Tensor  # (sum of lengths, H) float16: every caption's token features, concatenated
    offsets: torch.Tensor  # (N + 1,) int64: caption i's tokens are tokens[offsets[i]:offsets[i+1]]
    path: Path

    def __post_init__(self) -> None:
        self.index = {c: i for i, c in enumerate(self.captions)}

    def token_features(self, i: int) -> torch.Tensor:
        return self.tokens[self.offsets[i] : self.offsets[i + 1]].float()

    def padded(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, Lmax, H) float32 token features and their (B, Lmax) bool mask for a batch of captions."""
        feats = [self.token_features(i) for i in indices]
        width = max(len(f) for f in feats)
        out = torch.zeros(len(feats), width, self.tokens.shape[1])
        mask = torch.zeros(len(feats), width, dtype=torch.bool)
        for row, f in enumerate(feats):
            out[row, : len(f)] = f
            mask[row, : len(f)] = True
        return out, mask


def rows_digest(encoder) -> str | None:
    """sha256 of the encoder's selected rows (ids and values); None for the base model."""
    rows = encoder.rows
    if rows is None:
        return None
    h = hashlib.sha256(rows.ids.detach().cpu().numpy().tobytes())
    h.update(rows.rows.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def features_key(encoder, captions: Sequence[str]) -> str:
    digest = hashlib.sha256("\n".join(captions).encode()).hexdigest()
    key = {"model": encoder.folder_hash, "family": encoder.family, "max_length": encoder.max_length,
           "captions": digest, "format": 1}
    rows = rows_digest(encoder)
    if rows is not None:  # aligned rows: another encoder (the base model's key stays what it always was)
        key["rows"] = rows
    return content_hash(key)


def frozen_features(encoder, captions: Sequence[str], workspace: str | os.PathLike, batch_size: int = 128,
                    progress: bool = True) -> FrozenFeatures:
    """Features of the unique captions under this encoder (the base model, or one with aligned rows: the key holds
    the rows' digest), read from the workspace cache or computed once."""
    from safetensors.torch import load_file, save_file

    unique = list(dict.fromkeys(captions))
    path = Path(workspace) / "cache" / "text" / f"{features_key(encoder, unique)}.safetensors"

    def build(tmp: Path) -> None:
        sent, toks, lengths = [], [], []
        for start in tqdm(range(0, len(unique), batch_size), desc="text features", unit="batch",
                          disable=not progress):
            out = encoder.encode(unique[start : start + batch_size], batch_size=batch_size)
            sent.append(out.sentence.float().cpu())
            for row, mask in zip(out.tokens, out.mask):
                toks.append(row[mask].to(torch.float16).cpu())
                lengths.append(int(mask.sum()))
        offsets = torch.zeros(len(unique) + 1, dtype=torch.long)
        offsets[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.long), 0)
        save_file({"sentence": torch.cat(sent), "tokens": torch.cat(toks), "offsets": offsets}, str(tmp),
                  metadata={"captions": "\n".join(unique)})

    get_or_build(path, build)
    tensors = load_file(str(path))
    return FrozenFeatures(unique, tensors["sentence"], tensors["tokens"], tensors["offsets"], path)
