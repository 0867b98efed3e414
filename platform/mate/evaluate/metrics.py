"""The standard text-to-motion metrics on evaluator embeddings, computed as the T2M literature does.

Definitions follow Guo et al. 2022 ("Generating Diverse and Natural 3D Human Motions from Text") and the evaluation
scripts that reuse them (T2M-GPT, MoMask, MDM); everything is float64 numpy inside:

- FID: Fréchet distance between Gaussians fitted (mean, unbiased covariance) to real and generated motion embeddings.
- R-Precision: consecutive batches of 32 matched (text, motion) pairs, the last incomplete batch dropped; in a batch
  each text ranks the 32 motions by Euclidean distance; top-k = the matched motion among the k nearest (cumulative).
- MM-Dist (the papers' "matching score"): mean Euclidean distance between matched text and motion embeddings over the
  same full batches.
- Diversity: mean distance between `times` random pairs (two independent draws without replacement).
- MultiModality: per text, mean distance between `times` random pairs of its generated samples, averaged over texts.

`evaluate_embeddings` repeats them over bootstrap resamples of the test set and names the results as
docs/architecture.md §7 does (`eval/fid`, `eval/fid_ci95`, ...). The value is the mean over repetitions (FID: the whole
test set) and `_ci95` the T2M "±" (`ci95`: 1.96 * std / sqrt(repetitions), the interval of that mean); `ci="bootstrap"`
gives the interval of the statistic itself.
"""

from __future__ import annotations

import numpy as np

from mate.evaluate.bootstrap import bootstrap_se95, ci95

__all__ = [
    "ci95",
    "diversity",
    "evaluate_embeddings",
    "evaluate_real",
    "fid",
    "frechet_distance",
    "gaussian_stats",
    "mm_dist",
    "multimodality",
    "r_precision",
    "r_precision_ceiling",
]

METRICS = ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "diversity", "multimodality")


def _emb(x, name: str, ndim: int = 2) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf")
    return arr


# ---------------------------------------------------------------------------------------------------------------- FID


def gaussian_stats(emb) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (``np.cov(rowvar=False)``, as Guo et al.) of an (n, D) embedding set, n >= 2."""
    x = _emb(emb, "embeddings")
    if x.shape[0] < 2:
        raise ValueError(f"a covariance needs at least 2 embeddings, got {x.shape[0]}")
    return x.mean(axis=0), np.atleast_2d(np.cov(x, rowvar=False))


def _sqrt_psd(s: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((s + s.T) / 2)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def _trace_sqrt_product(s1: np.ndarray, s2: np.ndarray) -> float:
    # Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}): the two products are similar, and the second is symmetric
    # PSD, so its square root's trace is the sum of the square roots of its (clipped) eigenvalues.
    r = _sqrt_psd(s1)
    m = r @ s2 @ r
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2}), the Fréchet distance between two Gaussians.

    The matrix square root is taken the symmetric way (eigendecompositions of symmetric PSD matrices, no complex
    parts to discard). Should it come out non-finite, `eps` is added to both diagonals and it is computed again.
    Tiny negative results from rounding are returned as 0.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    try:
        tr_sqrt = _trace_sqrt_product(s1, s2)
    except np.linalg.LinAlgError:
        tr_sqrt = float("nan")
    if not np.isfinite(tr_sqrt):
        offset = np.eye(s1.shape[0]) * eps
        tr_sqrt = _trace_sqrt_product(s1 + offset, s2 + offset)
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_sqrt)
    return max(value, 0.0)


def fid(real_emb, gen_emb, eps: float = 1e-6) -> float:
    """FID between two embedding sets (n x D each, n >= 2): the Fréchet distance of their fitted Gaussians."""
    mu1, s1 = gaussian_stats(real_emb)
    mu2, s2 = gaussian_stats(gen_emb)
    return frechet_distance(mu1, s1, mu2, s2, eps=eps)


# ------------------------------------------------------------------------------------------- R-Precision, MM-Dist


def _full_batches(n: int, batch_size: int) -> int:
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    nb = n // batch_size
    if nb == 0:
        raise ValueError(f"R-Precision needs at least one full batch: {n} pairs < batch_size {batch_size}")
    return nb


def _batched_distances(text: np.ndarray, motion: np.ndarray, batch_size: int) -> np.ndarray:
    """(num_batches, B, B) Euclidean distances texts x motions inside each consecutive full batch."""
    nb = _full_batches(text.shape[0], batch_size)
    t = text[: nb * batch_size].reshape(nb, batch_size, -1)
    m = motion[: nb * batch_size].reshape(nb, batch_size, -1)
    d2 = (t * t).sum(-1)[:, :, None] + (m * m).sum(-1)[:, None, :] - 2.0 * np.einsum("bid,bjd->bij", t, m)
    return np.sqrt(np.clip(d2, 0.0, None))


def r_precision(text_emb, motion_emb, batch_size: int = 32, top_k: int = 3, ids=None) -> np.ndarray:
    """R-Precision [top1, ..., top_k] over consecutive full batches (the last incomplete batch is dropped).

    Text i of a batch ranks the batch's motions by Euclidean distance; top-k counts when its matched motion i is
    among the k nearest. Ties are broken as the literature's stable argsort does (the motion earlier in the batch
    ranks first), so a collapsed generator whose motions all coincide scores chance, not 1. `ids` (optional, one per
    pair) names the underlying item: motions with the same id as the text's own pair are copies of the matched motion
    (bootstrap duplicates) and never count against it. No shuffling here: the caller shuffles.
    """
    text, motion = _emb(text_emb, "text_emb"), _emb(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise ValueError(f"text_emb {text.shape} and motion_emb {motion.shape} must be matched pairs")
    if top_k < 1 or top_k > batch_size:
        raise ValueError(f"top_k must be in 1..batch_size, got {top_k}")
    d = _batched_distances(text, motion, batch_size)
    nb = d.shape[0]
    matched = np.diagonal(d, axis1=1, axis2=2)[:, :, None]  # (nb, B, 1)
    pos = np.arange(batch_size)
    ahead = (d < matched) | ((d == matched) & (pos[None, None, :] < pos[None, :, None]))
    ahead &= ~np.eye(batch_size, dtype=bool)[None]
    if ids is not None:
        ids = np.asarray(ids)
        if ids.shape != (text.shape[0],):
            raise ValueError(f"ids must have one entry per pair ({text.shape[0]}), got shape {ids.shape}")
        b = ids[: nb * batch_size].reshape(nb, batch_size)
        ahead &= b[:, :, None] != b[:, None, :]
    rank = ahead.sum(-1)  # 0 = nearest
    return np.array([(rank < k).mean() for k in range(1, top_k + 1)], dtype=np.float64)


def mm_dist(text_emb, motion_emb, batch_size: int = 32) -> float:
    """MM-Dist: mean Euclidean distance between matched text and motion embeddings over the full batches of
    `batch_size` (the same pairs R-Precision sees; Guo et al.'s "matching score")."""
    text, motion = _emb(text_emb, "text_emb"), _emb(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise ValueError(f"text_emb {text.shape} and motion_emb {motion.shape} must be matched pairs")
    used = _full_batches(text.shape[0], batch_size) * batch_size
    return float(np.linalg.norm(text[:used] - motion[:used], axis=1).mean())


# -------------------------------------------------------------------------------------- Diversity, MultiModality


def diversity(emb, times: int = 300, seed: int = 0) -> float:
    """Diversity: mean Euclidean distance between `times` random pairs of embeddings.

    As Guo et al.: two independent draws of `times` indices, each without replacement, paired in order. Their code
    requires len(emb) > times; here a smaller set uses times = len(emb) instead (tiny test splits).
    """
    x = _emb(emb, "emb")
    n = x.shape[0]
    times = min(times, n)
    if times < 1:
        raise ValueError("diversity needs at least one embedding")
    rng = np.random.default_rng(seed)
    first = rng.choice(n, times, replace=False)
    second = rng.choice(n, times, replace=False)
    return float(np.linalg.norm(x[first] - x[second], axis=1).mean())


def multimodality(emb_per_text, times: int = 10, seed: int = 0) -> float:
    """MultiModality of (num_texts, num_samples, D) embeddings: for every text the mean distance between `times`
    random pairs of its samples, averaged over texts.

    As Guo et al.: the two index draws (each without replacement) are shared by all texts. Fewer samples than
    `times` use times = num_samples.
    """
    x = _emb(emb_per_text, "emb_per_text", ndim=3)
    k = x.shape[1]
    times = min(times, k)
    if times < 1 or x.shape[0] < 1:
        raise ValueError(f"multimodality needs texts and samples, got shape {x.shape}")
    rng = np.random.default_rng(seed)
    first = rng.choice(k, times, replace=False)
    second = rng.choice(k, times, replace=False)
    return float(np.linalg.norm(x[:, first] - x[:, second], axis=2).mean())


# ------------------------------------------------------------------------------------------- repeated evaluation


def evaluate_embeddings(
    text_emb,
    motion_emb_real,
    motion_emb_gen,
    repeats: int = 20,
    seed: int = 0,
    mm_emb=None,
    *,
    batch_size: int = 32,
    diversity_times: int = 300,
    mm_times: int = 10,
    bootstrap: bool = True,
    ci: str = "t2m",
    prefix: str = "eval/",
) -> dict[str, float]:
    """All T2M metrics of a generator on the test split, each over `repeats` repetitions with its interval.

    text_emb, motion_emb_real, motion_emb_gen: (n, D) evaluator embeddings of the test pairs (the generated motion
    for text i is row i of motion_emb_gen). mm_emb: optional (num_texts, num_samples, D) embeddings of several
    generations per text, for MultiModality. Each repetition resamples the n indices with replacement (`bootstrap`;
    False keeps the set and only reshuffles, the literature's protocol for a fixed generated set), uses the same
    indices for texts, real and generated motions, shuffles them into batches of `batch_size` and computes every
    metric on that resample (FID of real vs generated; R-Precision and MM-Dist of texts vs generated; Diversity of
    generated). MultiModality resamples the texts of mm_emb.

    Returns ``{prefix + name: value, prefix + name + "_ci95": half-width}`` for name in fid, r_precision_top1..3,
    mm_dist, diversity (and multimodality when mm_emb is given). The value is the mean over repetitions, except FID,
    which is computed once on the whole test set (bootstrap copies inflate FID: see the code). `ci` "t2m" is the
    literature's ± (1.96 std / sqrt(repeats): the interval of the mean over repetitions, comparable with papers);
    "bootstrap" is 1.96 x the std of the resampled values (the interval of the statistic on another test set of this
    size). Diversity on a resample is biased low by about 2/n (pairs of copies of one clip). Deterministic for a seed.
    """
    text = _emb(text_emb, "text_emb")
    real = _emb(motion_emb_real, "motion_emb_real")
    gen = _emb(motion_emb_gen, "motion_emb_gen")
    n = text.shape[0]
    if real.shape[0] != n or gen.shape[0] != n:
        raise ValueError(f"text ({n}), real ({real.shape[0]}) and generated ({gen.shape[0]}) must be matched rows")
    if gen.shape[1] != text.shape[1] or real.shape[1] != gen.shape[1]:
        raise ValueError(f"embedding widths differ: text {text.shape[1]}, real {real.shape[1]}, gen {gen.shape[1]}")
    _full_batches(n, batch_size)
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    if ci not in ("t2m", "bootstrap"):
        raise ValueError(f"unknown interval {ci!r}: 't2m' or 'bootstrap'")
    mm = None if mm_emb is None else _emb(mm_emb, "mm_emb", ndim=3)

    rng = np.random.default_rng(seed)
    rows: dict[str, list[float]] = {name: [] for name in METRICS if name != "multimodality" or mm is not None}
    for _ in range(repeats):
        idx = rng.integers(0, n, size=n) if bootstrap else np.arange(n)
        order = idx[rng.permutation(n)]
        t, r, g = text[order], real[order], gen[order]
        rows["fid"].append(fid(r, g))
        top = r_precision(t, g, batch_size=batch_size, top_k=3, ids=order)
        for k in range(3):
            rows[f"r_precision_top{k + 1}"].append(float(top[k]))
        rows["mm_dist"].append(mm_dist(t, g, batch_size=batch_size))
        rows["diversity"].append(diversity(g, times=diversity_times, seed=int(rng.integers(2**31))))
        if mm is not None:
            m_idx = rng.integers(0, mm.shape[0], size=mm.shape[0]) if bootstrap else np.arange(mm.shape[0])
            rows["multimodality"].append(multimodality(mm[m_idx], times=mm_times, seed=int(rng.integers(2**31))))

    interval = ci95 if ci == "t2m" else bootstrap_se95
    out: dict[str, float] = {}
    for name, values in rows.items():
        arr = np.asarray(values, dtype=np.float64)
        out[f"{prefix}{name}"] = float(arr.mean())
        out[f"{prefix}{name}_ci95"] = float(interval(arr))
    # FID's finite-sample bias grows as the number of distinct items falls, and a bootstrap resample holds ~63% of
    # them: the mean over resamples sits well above the full-set FID (+30-80% at n = 600..4,400, D = 256..512).
    # The value is therefore the literature's, on the whole test set; the resamples give only its interval.
    out[f"{prefix}fid"] = fid(real, gen)
    return out


def evaluate_real(text_emb, motion_emb_real, repeats: int = 20, seed: int = 0, **kwargs) -> dict[str, float]:
    """The papers' "Real" row: `evaluate_embeddings` with the real motions standing in for the generated ones.

    Its FID is 0 by construction (same resampled motions on both sides); R-Precision, MM-Dist and Diversity are the
    references a generator is read against. No MultiModality (one motion per text).
    """
    kwargs.pop("mm_emb", None)
    return evaluate_embeddings(text_emb, motion_emb_real, motion_emb_real, repeats=repeats, seed=seed, **kwargs)


# --------------------------------------------------------------------------------------------- R-Precision ceiling


def r_precision_ceiling(
    caption_groups,
    batch_size: int = 32,
    seed: int = 0,
    repeats: int = 20,
    top_k: int = 3,
    bootstrap: bool = True,
) -> dict[str, float]:
    """How much a corpus with repeated meanings caps R-Precision, under the protocol `evaluate_embeddings` runs.

    caption_groups: one int meaning id per test item (items whose captions mean the same thing share it, e.g. the
    template's attribute values). Each repetition resamples (when `bootstrap`) and shuffles the items into full
    batches of `batch_size`, as the evaluation does. Returns:

    - ``same_meaning_rate``: the probability that at least one *other* item (another underlying clip, not a bootstrap
      copy of the same one) in the item's batch shares its meaning id;
    - ``top1`` .. ``top{top_k}``: the R-Precision of an ideal meaning-level retriever, which finds the right meaning
      always but cannot tell same-meaning clips apart (a uniformly random order among them): a text's matched motion
      is within the k nearest when fewer than k same-meaning distinct clips of the batch are drawn ahead of it.
      ``top1`` is the R@1 ceiling (``eval/r_precision_ceiling``); without resampling it is E[1 / (1 + m)] for m
      same-meaning others in the batch (a Monte Carlo estimate over `repeats` shuffles).
    """
    groups = np.asarray(caption_groups)
    if groups.ndim != 1:
        raise ValueError(f"caption_groups must be one id per item, got shape {groups.shape}")
    n = groups.shape[0]
    nb = _full_batches(n, batch_size)
    rng = np.random.default_rng(seed)
    collide, hits = [], []
    for _ in range(repeats):
        idx = rng.integers(0, n, size=n) if bootstrap else np.arange(n)
        order = idx[rng.permutation(n)][: nb * batch_size].reshape(nb, batch_size)
        g = groups[order]
        same = (g[:, :, None] == g[:, None, :]) & (order[:, :, None] != order[:, None, :])
        collide.append(same.any(-1).mean())
        # random order among distinct clips: one key per underlying item (copies move together)
        key = rng.random(n)[order]
        ahead = same & (key[:, None, :] < key[:, :, None])
        rank = ahead.sum(-1)
        hits.append([(rank < k).mean() for k in range(1, top_k + 1)])
    out = {"same_meaning_rate": float(np.mean(collide))}
    mean_hits = np.asarray(hits).mean(axis=0)
    for k in range(top_k):
        out[f"top{k + 1}"] = float(mean_hits[k])
    return out
