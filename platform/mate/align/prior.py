"""The localization prior (docs/method.md §7) on the token grid the word-guided attention runs on.

A word occurrence comes with the segment [s, e) of its sub-text, in feature rows. The motion encoder downsamples time
by `downsample` (4, like Guo's movement encoder and our retrieval model), so the prior is built on its token grid:

    c_tok = (s + e) / 2 / downsample,   sigma_tok = sigma_scale * (e - s) / 2 / downsample
    G(tau) = exp(-(tau - c_tok)^2 / (2 sigma_tok^2)),   tau = 0, 1, ..., L - 1

Token tau is evaluated at position tau (the paper's formula with frames replaced by tokens; token tau covers rows
[4 tau, 4 tau + 4)). `kind` (`align.prior`) picks the prior of the paper's ablation:

- ``none``: zeros (plain attention);
- ``binary``: 1 on the segment's token range, 0 elsewhere;
- ``gaussian_segment``: the Gaussian, set to 0 outside the segment's token range;
- ``gaussian_full``: the Gaussian over the whole clip, not truncated (the paper's choice).

The segment's token range is [round(s / ds), round(e / ds)) with halves rounding up (the nearest-token rule of
`mate.evaluate.partition.frames_to_tokens`), clamped to the clip's valid tokens; a span too short to cover a token
keeps the one token that holds its centre. This range (`segment_token_range`, one span: `token_span`) is the only
row-to-token span rule: `mate.align.run` measures align/attn_in_span and plots the true span on the same tokens.
Tokens at or beyond a clip's valid token count (`token_lengths`) are 0 under every kind.

`kl_localization` is the optional attention loss L_loc (ours; the paper has none): KL(normalised prior || attention).
"""

from __future__ import annotations

from typing import Sequence

import torch

PRIOR_KINDS = ("none", "binary", "gaussian_segment", "gaussian_full")
DOWNSAMPLE = 4
_MIN_SIGMA = 1e-3  # tokens: a zero-width span still gives a finite (spike) Gaussian

__all__ = ["DOWNSAMPLE", "PRIOR_KINDS", "gaussian_prior", "kl_localization", "segment_token_range", "token_lengths",
           "token_span"]


def token_lengths(lengths: torch.Tensor | Sequence[int], downsample: int = DOWNSAMPLE) -> torch.Tensor:
    """Valid token count of each clip: ``max(T // downsample, 1)`` (a trailing partial token is not valid)."""
    lengths = torch.as_tensor(lengths)
    return torch.div(lengths, downsample, rounding_mode="floor").clamp(min=1).long()


def _as_spans(spans) -> torch.Tensor:
    t = torch.as_tensor(spans)
    if t.ndim != 2 or t.shape[-1] != 2:
        raise ValueError(f"spans must be (B, 2) [start, end) pairs in feature rows, got shape {tuple(t.shape)}")
    return t


def segment_token_range(spans, length_tokens, downsample: int = DOWNSAMPLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows -> tokens for the prior, attn_in_span and plots: nearest token bounds (a token is in iff half its rows are).

    spans (B, 2) [start, end) in feature rows; length_tokens (B,) valid tokens (`token_lengths`). Each bound goes to
    the nearest token boundary, halves up (the rule of `frames_to_tokens`): token t (rows [4t, 4t + 4)) is inside
    when at least 2 of its 4 rows are. Returns long tensors (lo, hi), the range [lo, hi) clamped to the valid tokens
    and never empty (a span too short to hold a token keeps the token of its centre). Not floor/ceil: rows
    [4a, 4b) map back to exactly tokens [a, b), and a neighbour holding one stray row of the span stays outside.
    """
    spans = _as_spans(spans)
    n_tok = torch.as_tensor(length_tokens, device=spans.device).long()
    s, e = spans[:, 0].long(), spans[:, 1].long()
    lo = torch.div(2 * s + downsample, 2 * downsample, rounding_mode="floor")
    hi = torch.div(2 * e + downsample, 2 * downsample, rounding_mode="floor")
    lo, hi = torch.minimum(lo, n_tok), torch.minimum(hi, n_tok)
    centre = torch.div(s + e, 2 * downsample, rounding_mode="floor").clamp(max=n_tok - 1).clamp(min=0)
    empty = hi <= lo
    lo = torch.where(empty, centre, lo)
    hi = torch.where(empty, centre + 1, hi)
    return lo, hi


def token_span(rows_span: tuple[int, int], unit: int = DOWNSAMPLE, n_tokens: int | None = None) -> tuple[int, int]:
    """One span's tokens [lo, hi) by `segment_token_range`'s nearest-boundary rule (n_tokens: the clip's valid
    tokens; None: as many as the span's end needs)."""
    s, e = (int(v) for v in rows_span)
    if n_tokens is None:
        n_tokens = max(-(-e // unit), 1)
    lo, hi = segment_token_range([[s, e]], [int(n_tokens)], unit)
    return int(lo[0]), int(hi[0])


def gaussian_prior(spans, length_tokens, kind: str, sigma_scale: float, downsample: int = DOWNSAMPLE,
                   num_tokens: int | None = None) -> torch.Tensor:
    """The (B, L) prior of each word occurrence on the attention's token grid (see the module docstring).

    spans: (B, 2) [start, end) of the word's sub-text segment, in feature rows (ints or floats).
    length_tokens: (B,) valid token count of each clip (`token_lengths(frame_lengths)`).
    kind: one of PRIOR_KINDS (`align.prior`); sigma_scale: `align.sigma_scale` (> 0 for the Gaussian kinds).
    num_tokens: L, the padded grid size (default: the largest valid count).
    Returns float32 on the spans' device, 0 on padded tokens.
    """
    if kind not in PRIOR_KINDS:
        raise ValueError(f"prior kind must be one of {PRIOR_KINDS}, got {kind!r}")
    spans = _as_spans(spans)
    n_tok = torch.as_tensor(length_tokens, device=spans.device).long()
    if n_tok.shape != spans.shape[:1]:
        raise ValueError(f"length_tokens must be (B,) = ({spans.shape[0]},), got {tuple(n_tok.shape)}")
    big_l = int(n_tok.max().item()) if num_tokens is None else int(num_tokens)
    if num_tokens is not None and len(n_tok) and int(n_tok.max()) > big_l:
        raise ValueError(f"a clip has {int(n_tok.max())} valid tokens, more than num_tokens={big_l}")
    tau = torch.arange(big_l, device=spans.device, dtype=torch.float32)[None]  # (1, L)
    valid = tau < n_tok[:, None]
    if kind == "none":
        return torch.zeros(len(spans), big_l, device=spans.device)
    lo, hi = segment_token_range(spans, n_tok, downsample)
    inside = (tau >= lo[:, None]) & (tau < hi[:, None])
    if kind == "binary":
        return (inside & valid).float()
    if not sigma_scale > 0:
        raise ValueError(f"sigma_scale must be > 0 for a Gaussian prior, got {sigma_scale}")
    s, e = spans[:, 0].float(), spans[:, 1].float()
    c_tok = (s + e) / 2 / downsample
    sigma_tok = (sigma_scale * (e - s) / 2 / downsample).clamp(min=_MIN_SIGMA)
    g = torch.exp(-((tau - c_tok[:, None]) ** 2) / (2 * sigma_tok[:, None] ** 2))
    keep = valid & inside if kind == "gaussian_segment" else valid
    return g * keep


def kl_localization(attn: torch.Tensor, prior: torch.Tensor, mask: torch.Tensor, reduction: str = "mean",
                    eps: float = 1e-8) -> torch.Tensor:
    """L_loc = KL(p || a) = sum_tau p(tau) log(p(tau) / a(tau)), p = the prior normalised over the valid tokens.

    attn: (B, L) attention weights (a (B, heads, L) input is averaged over heads first: the heads together, not
    each head, are asked to follow the prior); prior: (B, L) >= 0; mask: (B, L) bool, True on valid tokens.
    Items whose prior is all zero on valid tokens (kind none) have no term. reduction ``mean``: the mean over the
    items that have one (0 when none has); ``none``: (B,) with 0 for the items without a term.
    """
    if attn.ndim == 3:
        attn = attn.mean(1)
    p = prior.to(attn.dtype) * mask
    total = p.sum(-1)
    has = total > 0
    p = p / total.clamp(min=eps)[:, None]
    kl = (torch.xlogy(p, p) - p * torch.log(attn.clamp(min=eps))).sum(-1) * has
    if reduction == "none":
        return kl
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    if not bool(has.any()):
        return attn.new_zeros(())
    return kl.sum() / has.sum()
