"""Word-level evidence that alignment did what it claims (docs/method.md §12), from the corpus's minimal pairs.

- `align/pair_cos_<attr>`: mean cosine between the language model's sentence features of the two captions of an
  antonym pair: the entanglement a downstream generator reads (base MiniLM puts most above 0.95).
- `align/pair_margin_<attr>`: synonym-pair cosine minus antonym-pair cosine. Any noise in the rows lowers antonym
  cosines too; only a margin that rises while synonyms stay together is evidence.
- `align/word_pair_acc(_comp)`: a clip's motion feature is closer to its true caption than to the caption with the
  motion word swapped for its opposite (given a motion/text scorer).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

ATTRIBUTES = ("turn", "direction", "speed", "limb")


@torch.no_grad()
def _sentence(encoder, texts: Sequence[str], batch: int = 256) -> torch.Tensor:
    out = [encoder(list(texts[i : i + batch])).sentence.float() for i in range(0, len(texts), batch)]
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def pair_cosines(encoder, pairs: Sequence[dict]) -> dict[str, float]:
    """align/pair_cos_<attr> (antonyms) and align/pair_margin_<attr> (synonym cos - antonym cos), plus the synonym
    cosines themselves (align/syn_cos_<attr>) so a margin can be read as separation, not noise."""
    if not pairs:
        return {}
    a = _sentence(encoder, [p["text_a"] for p in pairs])
    b = _sentence(encoder, [p["text_b"] for p in pairs])
    cos = (a * b).sum(-1).cpu().numpy()
    out: dict[str, float] = {}
    for attr in ATTRIBUTES:
        ant = [c for c, p in zip(cos, pairs) if p["attribute"] == attr and p["kind"] == "antonym"]
        syn = [c for c, p in zip(cos, pairs) if p["attribute"] == attr and p["kind"] == "synonym"]
        if ant:
            out[f"align/pair_cos_{attr}"] = float(np.mean(ant))
        if syn:
            out[f"align/syn_cos_{attr}"] = float(np.mean(syn))
        if ant and syn:
            out[f"align/pair_margin_{attr}"] = float(np.mean(syn) - np.mean(ant))
    return out


def word_pair_accuracy(score: Callable[[list[str], list[str]], np.ndarray], pairs: Sequence[dict]) -> dict[str, float]:
    """`score(clip_ids, texts) -> (n,)` similarity of each clip's motion feature to a caption. A pair counts when the
    clip scores its true caption (text_a) above the swapped one (text_b)."""
    ant = [p for p in pairs if p["kind"] == "antonym"]
    if not ant:
        return {}
    clips = [p["clip"] for p in ant]
    hit = score(clips, [p["text_a"] for p in ant]) > score(clips, [p["text_b"] for p in ant])
    comp = np.array([bool(p["compositional"]) for p in ant])
    out = {"align/word_pair_acc": float(hit.mean())}
    if comp.any():
        out["align/word_pair_acc_comp"] = float(hit[comp].mean())
    return out


def row_drift(rows) -> dict[str, float]:
    """align/row_cos (mean cosine of trained rows to their base rows) and align/row_norm_ratio (mean norm ratio)."""
    if rows is None or len(rows.ids) == 0:
        return {}
    base = rows.base.weight.detach()[rows.ids].float()
    new = rows.rows.detach().float()
    cos = torch.nn.functional.cosine_similarity(new, base, dim=-1)
    ratio = new.norm(dim=-1) / base.norm(dim=-1).clamp(min=1e-8)
    return {"align/row_cos": float(cos.mean()), "align/row_norm_ratio": float(ratio.mean())}
