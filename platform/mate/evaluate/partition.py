"""The optimal motion partition (docs/method.md §4): N ordered sub-texts onto N contiguous segments of a clip.

Given per-frame (or per-token) motion features F (T x D) from one encoder pass and N ordered sub-text embeddings E
(N x D), find boundaries 0 = b_0 < b_1 < ... < b_N = T, each segment at least `min_len` long, minimising

    sum_n 1 - cos(E_n, pool(F[b_n:b_{n+1}]))

where pool is the mean over the window, optionally followed by a head (`pool=`: a callable mapping a float32 torch
tensor of window means to the joint space, e.g. the retrieval model's projection). Every window [s, e) is scored
at once from prefix sums P (P[0] = 0, P[t] = F[0] + ... + F[t-1]): mean(F[s:e]) = (P[e] - P[s]) / (e - s), and
without a head the cosine does not see the 1 / (e - s), so the whole (T+1) x (T+1) table costs two small matrix
products (batched over clips). An exact dynamic programme over split points (O(N T^2)) then
finds the best partition; it is equivalent to the paper's enumeration of all partitions.

Spans are half-open ``(start, end)`` pairs of ints in the grid of F (feature rows, or encoder tokens); use
`tokens_to_frames` to go from a downsampled token grid back to feature rows.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

Span = tuple[int, int]
Pool = Callable[[torch.Tensor], object]

__all__ = [
    "equal_split",
    "frame_iou",
    "frames_to_tokens",
    "mean_frame_iou",
    "optimal_partition",
    "optimal_partitions",
    "partition_clip",
    "partition_dataset",
    "prefix_sums",
    "tokens_to_frames",
    "window_costs",
    "window_means",
]


def _np64(x, name: str, ndim: int) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return arr


def _t64(x) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float64)
    return torch.from_numpy(np.asarray(x, dtype=np.float64))


def _valid_mask(length: int, min_len: int) -> np.ndarray:
    """(T+1, T+1) boolean: window [s, e) with e - s >= min_len (>= 1)."""
    b = np.arange(length + 1)
    return (b[None, :] - b[:, None]) >= max(1, min_len)


def prefix_sums(features) -> np.ndarray:
    """(T+1, D) float64 prefix sums of (T, D) features, P[0] = 0."""
    f = _np64(features, "features", 2)
    out = np.zeros((f.shape[0] + 1, f.shape[1]))
    np.cumsum(f, axis=0, out=out[1:])
    return out


def window_means(features, min_len: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every window [s, e) with e - s >= min_len: (starts, ends, means (num_windows, D)), means from prefix sums."""
    p = prefix_sums(features)
    s, e = np.nonzero(_valid_mask(p.shape[0] - 1, min_len))
    return s, e, (p[e] - p[s]) / (e - s)[:, None]


def _unit(x: torch.Tensor) -> torch.Tensor:
    norm = x.norm(dim=-1, keepdim=True)
    return x / torch.where(norm > 0, norm, torch.ones_like(norm))


# ------------------------------------------------------------------------------------------ batched window scores


def _bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # one clip: a plain matmul (torch.bmm opens a parallel region even for a batch of 1, which costs milliseconds
    # when the cores are busy)
    return (a[0] @ b[0])[None] if a.shape[0] == 1 else torch.bmm(a, b)


def _score_chunk(
    feats: list[torch.Tensor], subs: list[torch.Tensor], min_lens: list[int], pool: Pool | None, pool_batch: int
) -> np.ndarray:
    """Cost tables (B, N_max, L+1, L+1) for a chunk of clips padded to the longest (L) and the most sub-texts;
    windows that are too short, or reach past a clip's end, cost inf."""
    lengths = torch.tensor([f.shape[0] for f in feats])
    counts = [e.shape[0] for e in subs]
    big_l, big_n, dim = int(lengths.max()), max(counts), feats[0].shape[1]
    x = torch.zeros(len(feats), big_l, dim, dtype=torch.float64)
    for i, f in enumerate(feats):
        x[i, : f.shape[0]] = f
    p = torch.cat([torch.zeros(len(feats), 1, dim, dtype=torch.float64), x.cumsum(1)], 1)  # (B, L+1, D)
    b = torch.arange(big_l + 1)
    width = b[None, :] - b[:, None]  # [s, e] = e - s
    valid = (width[None] >= torch.tensor(min_lens)[:, None, None]) & (b[None, None, :] <= lengths[:, None, None])
    sub_dim = subs[0].shape[1]
    e_unit = torch.zeros(len(subs), big_n, sub_dim, dtype=torch.float64)
    for i, e in enumerate(subs):
        e_unit[i, : e.shape[0]] = _unit(e)

    if pool is None:
        if sub_dim != dim:
            raise ValueError(f"feature width {dim} != sub-text width {sub_dim} (use pool= for a projection head)")
        # cos(E_n, mean F[s:e]) = E_n . (P[e] - P[s]) / (|E_n| |P[e] - P[s]|): the window length cancels.
        pe = _bmm(e_unit, p.transpose(1, 2))  # (B, N, L+1): E_n . P[t]
        dots = pe[:, :, None, :] - pe[:, :, :, None]  # [b, n, s, e]
        sq = (p * p).sum(-1)
        norm2 = sq[:, :, None] + sq[:, None, :] - 2.0 * _bmm(p, p.transpose(1, 2))  # |P[e] - P[s]|^2
        norm = norm2.clamp_min(0.0).sqrt()
        cos = dots / torch.where(norm > 0, norm, torch.ones_like(norm))[:, None]  # a zero window has cosine 0
        table = torch.where(valid[:, None], 1.0 - cos, torch.full_like(cos, float("inf")))
        return table.numpy()

    # every window s < e of the padded grid (clips are sorted by length, so few are wasted), as (B, K) in float32,
    # what a head runs in: means from prefix-sum differences, the head in slices, one bmm against the sub-texts
    ws, we = torch.triu_indices(big_l + 1, big_l + 1, offset=max(1, min(min_lens)))
    p32 = p.to(torch.float32)
    means = p32.index_select(1, we)
    means.sub_(p32.index_select(1, ws)).div_((we - ws).to(torch.float32)[None, :, None])
    flat = means.reshape(-1, dim)
    parts = []
    for at in range(0, flat.shape[0], pool_batch):
        z = pool(flat[at : at + pool_batch])
        if not isinstance(z, torch.Tensor):
            z = torch.from_numpy(np.asarray(z))
        z = z.detach().to("cpu", torch.float32)
        rows = min(pool_batch, flat.shape[0] - at)
        if z.ndim != 2 or z.shape[0] != rows or z.shape[1] != sub_dim:
            raise ValueError(f"pool returned shape {tuple(z.shape)}; wanted ({rows}, {sub_dim})")
        parts.append(z)
    z = _unit(torch.cat(parts)).reshape(len(feats), len(ws), sub_dim)
    cos = _bmm(z, e_unit.to(torch.float32).transpose(1, 2)).to(torch.float64)  # (B, K, N)
    table = torch.full((len(feats), big_n, big_l + 1, big_l + 1), float("inf"), dtype=torch.float64)
    table[:, :, ws, we] = 1.0 - cos.transpose(1, 2)
    table = torch.where(valid[:, None], table, torch.full_like(table, float("inf")))
    return table.numpy()


def window_costs(features, subtexts, min_len: int = 1, pool: Pool | None = None) -> np.ndarray:
    """Score table (N, T+1, T+1): [n, s, e] = 1 - cos(E_n, pool(F[s:e])) for windows with e - s >= min_len, inf
    elsewhere. `pool` None is mean pooling, scored from prefix sums without forming the window means; otherwise
    `pool` maps a float32 torch tensor of window means (num_windows, D) to (num_windows, D') embeddings (a tensor or
    an array), called on all windows at once."""
    f, e = _t64(features), _t64(subtexts)
    if f.ndim != 2 or e.ndim != 2:
        raise ValueError(f"features (T, D) and subtexts (N, D) wanted, got {tuple(f.shape)} and {tuple(e.shape)}")
    return _score_chunk([f], [e], [max(1, min_len)], pool, pool_batch=1 << 30)[0]


# ------------------------------------------------------------------------------------------------------ the DP


def _batched_dp(tables: np.ndarray, lengths, counts, min_lens) -> list[tuple[list[Span], float]]:
    """Exact DP over split points for B padded tables (B, N_max, L+1, L+1) at once; clip i uses its first
    counts[i] rows, windows ending at or before lengths[i], of at least min_lens[i] steps."""
    num_b, big_n, size = tables.shape[0], tables.shape[1], tables.shape[2]
    lengths, counts = np.asarray(lengths), np.asarray(counts)
    b = np.arange(size)
    width = b[None, :] - b[:, None]
    valid = (width[None] >= np.maximum(1, np.asarray(min_lens))[:, None, None]) & (
        b[None, None, :] <= lengths[:, None, None]
    )
    best = np.full((num_b, size), np.inf)
    best[:, 0] = 0.0
    back = np.zeros((num_b, big_n, size), dtype=np.int64)
    final = np.full(num_b, np.inf)
    rows = np.arange(num_b)
    for n in range(big_n):
        step = np.where(valid & ~np.isnan(tables[:, n]), tables[:, n], np.inf)
        total = best[:, :, None] + step  # [b, s, e]
        back[:, n] = np.argmin(total, axis=1)
        best = np.take_along_axis(total, back[:, n][:, None, :], axis=1)[:, 0]
        done = counts == n + 1
        final[done] = best[rows[done], lengths[done]]
    out = []
    for i in range(num_b):
        cost = float(final[i])
        if not np.isfinite(cost):
            raise ValueError(
                f"no feasible partition of {lengths[i]} steps into {counts[i]} segments of >= {max(1, min_lens[i])}"
            )
        spans: list[Span] = []
        end = int(lengths[i])
        for n in range(int(counts[i]) - 1, -1, -1):
            start = int(back[i, n, end])
            spans.append((start, end))
            end = start
        out.append((spans[::-1], cost))
    return out


def optimal_partition(score_table, min_len: int = 1) -> tuple[list[Span], float]:
    """Exact DP over split points: the N contiguous segments covering 0..T that minimise sum_n table[n, s_n, e_n].

    score_table: (N, T+1, T+1), any cost per sub-text and window (inf or NaN = not allowed). Windows shorter than
    `min_len` (>= 1) are never used. Returns (spans, total cost); ties go to the earliest split. Raises ValueError
    when no partition is feasible (T < N * min_len, or every candidate has an infinite cost).
    """
    return optimal_partitions([score_table], min_len)[0]


def optimal_partitions(score_tables: Sequence, min_len: int = 1) -> list[tuple[list[Span], float]]:
    """`optimal_partition` for many tables of different N and T in one batched DP (they are padded together)."""
    tables = [np.asarray(t, dtype=np.float64) for t in score_tables]
    for t in tables:
        if t.ndim != 3 or t.shape[1] != t.shape[2] or t.shape[0] < 1:
            raise ValueError(f"score_table must be (N, T+1, T+1), got shape {t.shape}")
    if not tables:
        return []
    big_n, size = max(t.shape[0] for t in tables), max(t.shape[1] for t in tables)
    padded = np.full((len(tables), big_n, size, size), np.inf)
    for i, t in enumerate(tables):
        padded[i, : t.shape[0], : t.shape[1], : t.shape[2]] = t
    lengths = [t.shape[1] - 1 for t in tables]
    return _batched_dp(padded, lengths, [t.shape[0] for t in tables], [min_len] * len(tables))


def partition_clip(features, subtexts, min_len: int = 1, pool: Pool | None = None) -> list[Span]:
    """The optimal partition of one clip: features (T, D), subtexts (N, D) in order; see the module docstring."""
    return partition_dataset([features], [subtexts], min_len=min_len, pool=pool)[0]


def _feasible_min_len(length: int, num: int, min_len: int, index: int) -> int:
    if num < 1:
        raise ValueError(f"clip {index}: no sub-texts")
    if length < num:
        raise ValueError(f"clip {index}: {length} steps cannot hold {num} non-empty segments")
    return max(1, min(min_len, length // num))


def partition_dataset(
    features: Sequence,
    subtexts: Sequence,
    min_len: int = 1,
    pool: Pool | None = None,
    pool_batch: int = 65536,
    chunk_elements: int = 1 << 22,
) -> list[list[Span]]:
    """Partition many clips: features[i] (T_i, D) and subtexts[i] (N_i, D) (numpy or torch) per clip; returns the
    spans of every clip, in order.

    Clips are sorted by length and scored and solved in padded chunks (about `chunk_elements` table entries each,
    less with a head):
    one batched matrix product per chunk for the window scores, one batched DP. With `pool`, each chunk's window
    means go through the head `pool_batch` rows per call. A clip shorter than N_i * min_len uses the largest feasible
    minimum (T_i // N_i) instead; one shorter than N_i raises. On two CPU cores, 2,000 clips of <= 50 tokens
    (D = 256) and <= 3 sub-texts take about a second, or 2 s at <= 196 frames; through a 2-layer MLP head (which
    then runs on ~1.4M window means) about 4 s.
    """
    if len(features) != len(subtexts):
        raise ValueError(f"{len(features)} feature sets but {len(subtexts)} sub-text sets")
    feats = [_t64(f) for f in features]
    subs = [_t64(e) for e in subtexts]
    mins = []
    for i, (f, e) in enumerate(zip(feats, subs)):
        if f.ndim != 2 or e.ndim != 2:
            shapes = f"{tuple(f.shape)}, {tuple(e.shape)}"
            raise ValueError(f"clip {i}: features (T, D) and subtexts (N, D) wanted, got {shapes}")
        if f.shape[1] != feats[0].shape[1] or e.shape[1] != subs[0].shape[1]:
            raise ValueError(f"clip {i}: widths {f.shape[1]} / {e.shape[1]} differ from clip 0's")
        mins.append(_feasible_min_len(f.shape[0], e.shape[0], min_len, i))
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])
    # a clip costs N (L+1)^2 float64 table entries, and with a head also D (L+1)^2 / 2 float32 window means: the
    # budget counts the means at 1/8 (a chunk then holds <= 32 MB of tables and <= 64 MB of means)
    extra = feats[0].shape[1] // 8 + 1 if pool is not None and feats else 0
    out: list[list[Span] | None] = [None] * len(feats)
    at = 0
    while at < len(order):
        stop, big_n = at + 1, subs[order[at]].shape[0]
        while stop < len(order):
            nxt = order[stop]
            cand_n = max(big_n, subs[nxt].shape[0])
            if (stop - at + 1) * (cand_n + extra) * (feats[nxt].shape[0] + 1) ** 2 > chunk_elements:
                break
            big_n, stop = cand_n, stop + 1
        idx = order[at:stop]
        tables = _score_chunk([feats[i] for i in idx], [subs[i] for i in idx], [mins[i] for i in idx], pool, pool_batch)
        solved = _batched_dp(
            tables, [feats[i].shape[0] for i in idx], [subs[i].shape[0] for i in idx], [mins[i] for i in idx]
        )
        for i, (spans, _) in zip(idx, solved):
            out[i] = spans
        at = stop
    return out  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------- grids and scores


def tokens_to_frames(spans: Sequence[Span], num_frames: int, downsample: int = 4) -> list[Span]:
    """Spans on a token grid (one token per `downsample` frames) to feature-row spans: [s * ds, e * ds), the last
    segment ending at `num_frames` (the rows a final partial token covers), every bound clamped to num_frames."""
    out = [(min(s * downsample, num_frames), min(e * downsample, num_frames)) for s, e in spans]
    if out:
        out[-1] = (out[-1][0], num_frames)
    return out


def frames_to_tokens(spans: Sequence[Span], num_tokens: int, downsample: int = 4) -> list[Span]:
    """Feature-row spans to the token grid: every boundary rounded to the nearest token (clamped to num_tokens), the
    first start at 0 and the last end at num_tokens when the spans cover the clip. Short spans may become empty."""
    def grid(b: int) -> int:
        return min((2 * b + downsample) // (2 * downsample), num_tokens)  # nearest token, halves round up

    out = [(grid(s), grid(e)) for s, e in spans]
    if out:
        out[0] = (0 if spans[0][0] == 0 else out[0][0], out[0][1])
        out[-1] = (out[-1][0], num_tokens)
    return out


def frame_iou(pred_spans: Sequence[Span], true_spans: Sequence[Span]) -> float:
    """Mean over segments, matched by order, of the IoU of the frame sets [s, e); a segment one side lacks counts 0
    (the mean runs over the longer list). Two empty segments count 1."""
    num = max(len(pred_spans), len(true_spans))
    if num == 0:
        return 1.0
    total = 0.0
    for (ps, pe), (ts, te) in zip(pred_spans, true_spans):
        inter = max(0, min(pe, te) - max(ps, ts))
        union = max(0, pe - ps) + max(0, te - ts) - inter
        total += 1.0 if union == 0 else inter / union
    return total / num


def mean_frame_iou(preds: Sequence[Sequence[Span]], trues: Sequence[Sequence[Span]]) -> float:
    """`frame_iou` averaged over clips (``eval/partition_iou``)."""
    if len(preds) != len(trues) or not preds:
        raise ValueError(f"need matched, non-empty lists of clips, got {len(preds)} and {len(trues)}")
    return float(np.mean([frame_iou(p, t) for p, t in zip(preds, trues)]))


def equal_split(length: int, num: int) -> list[Span]:
    """The baseline: `num` contiguous segments of (nearly) equal length covering 0..length (bounds rounded)."""
    if num < 1 or length < num:
        raise ValueError(f"cannot split {length} steps into {num} non-empty segments")
    bounds = [(i * length * 2 + num) // (2 * num) for i in range(num + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(num)]
