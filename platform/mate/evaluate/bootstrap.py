"""Resampling and intervals: bootstrap repetitions, the T2M "±" convention and t-based intervals over seeds.

Two different intervals live here, and the names say which:

- `ci95(values)` is the T2M literature's "±" (Guo et al. 2022, and the T2M-GPT/MoMask/MDM evaluation scripts that
  copy it): ``1.96 * std(values) / sqrt(len(values))`` with the population std (``ddof=0``), over the repetitions of an
  evaluation. It is the 95% interval of the *mean over repetitions*, so it shrinks as repetitions are added; it is
  what the `eval/*_ci95` metrics report, comparable with the papers' tables.
- `bootstrap_se95(values)` is ``1.96 * std(values, ddof=1)``: the normal-approximation bootstrap interval of the
  statistic itself, i.e. how much the figure would move on another test set of the same size. It does not shrink
  with more repetitions.
- `t_interval(values)` is the Student-t interval of the mean over a few training seeds (tables over seeds):
  ``t_{0.975, n-1} * std(values, ddof=1) / sqrt(n)``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

#: z_{0.975}, the normal quantile behind every "1.96" in this package.
Z95 = 1.959963984540054

# Student t quantiles t_{0.975, dof} for dof = 1..30 (standard tables; checked against scipy in the tests).
_T975 = (
    12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934, 2.570581835636314,
    2.4469118511449692, 2.3646242515927844, 2.306004135204166, 2.2621571628540993, 2.2281388519649385,
    2.200985160082949, 2.1788128296634177, 2.1603686564610127, 2.1447866879169273, 2.131449545559323,
    2.1199052992210112, 2.1098155778331806, 2.10092204024096, 2.093024054408263, 2.0859634472658364,
    2.079613844727662, 2.0738730679040147, 2.0686576104190406, 2.0638985616280205, 2.059538552753294,
    2.055529438642871, 2.0518305164802833, 2.048407141795244, 2.045229642132703, 2.0422724563012373,
)


def t_quantile_975(dof: int) -> float:
    """The Student t quantile t_{0.975} for `dof` degrees of freedom (no scipy).

    dof 1..30 come from a table; beyond, the Cornish-Fisher expansion around z (Abramowitz & Stegun 26.7.5), whose
    error there is below 1e-6.
    """
    if dof < 1:
        raise ValueError(f"t quantile needs dof >= 1, got {dof}")
    if dof <= len(_T975):
        return _T975[dof - 1]
    z, v = Z95, float(dof)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def _values(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError("need at least one value")
    return arr


def ci95(values) -> float | np.ndarray:
    """Half-width of the T2M "±" interval: ``1.96 * std / sqrt(n)`` over the n repetitions (std with ddof=0).

    This is Guo et al.'s convention (their `get_metric_statistics`, copied by T2M-GPT, MoMask, MDM): the 95% interval
    of the mean over repetitions. One repetition gives 0. Works along axis 0 for array-valued repetitions.
    """
    arr = _values(values)
    return Z95 * arr.std(axis=0) / math.sqrt(arr.shape[0])


def bootstrap_se95(values) -> float | np.ndarray:
    """Half-width of the normal-approximation bootstrap interval of a statistic: ``1.96 * std(values, ddof=1)``.

    `values` are the statistic on bootstrap resamples; the result estimates the 95% interval of the statistic on
    a fresh sample of the same size (not of the mean over resamples). Fewer than two values give 0.
    """
    arr = _values(values)
    if arr.shape[0] < 2:
        return np.zeros(arr.shape[1:]) if arr.ndim > 1 else 0.0
    return Z95 * arr.std(axis=0, ddof=1)


def mean_ci(values, method: str = "t2m") -> tuple[float, float]:
    """(mean, half-width) of repetitions: `method` "t2m" uses `ci95` (the literature's ±, default), "bootstrap" uses
    `bootstrap_se95` (the interval of the statistic itself when the repetitions are bootstrap resamples)."""
    arr = _values(values)
    if method == "t2m":
        half = ci95(arr)
    elif method == "bootstrap":
        half = bootstrap_se95(arr)
    else:
        raise ValueError(f"unknown interval method {method!r}: 't2m' or 'bootstrap'")
    mean = arr.mean(axis=0)
    if arr.ndim == 1:
        return float(mean), float(half)
    return mean, half


def t_interval(values) -> tuple[float, float]:
    """(mean, half-width) of the Student-t 95% interval of the mean: ``t_{0.975, n-1} * std(ddof=1) / sqrt(n)``.

    For tables over a few training seeds (3 seeds are few: t_{0.975, 2} = 4.303, not 1.96). A single value has no
    interval: the half-width is NaN.
    """
    arr = _values(values)
    n = arr.shape[0]
    mean = arr.mean(axis=0)
    if n < 2:
        half = np.full(arr.shape[1:], np.nan) if arr.ndim > 1 else float("nan")
    else:
        half = t_quantile_975(n - 1) * arr.std(axis=0, ddof=1) / math.sqrt(n)
    if arr.ndim == 1:
        return float(mean), float(half)
    return mean, half


def interval_text(values, digits: int = 3) -> str:
    """A table cell over seeds: "mean ± half-width" (`t_interval`), the value alone for one seed, "-" for none.
    None, NaN and other non-numbers are left out (a seed that did not report the metric)."""
    kept = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not kept:
        return "-"
    if len(kept) == 1:
        return f"{kept[0]:.{digits}f}"
    mean, half = t_interval(kept)
    return f"{mean:.{digits}f} ± {half:.{digits}f}"


def bootstrap(stat_fn: Callable[[np.ndarray], object], n: int, repeats: int, seed: int = 0) -> np.ndarray:
    """The statistic on `repeats` bootstrap resamples of n items: ``stat_fn(indices)`` for indices drawn uniformly
    with replacement (length n each). Returns an array with one row per repetition (scalars give shape (repeats,)).

    Deterministic for a seed: repetition r always sees the same indices.
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"bootstrap needs n >= 1 and repeats >= 1, got n={n}, repeats={repeats}")
    rng = np.random.default_rng(seed)
    out = [np.asarray(stat_fn(rng.integers(0, n, size=n)), dtype=np.float64) for _ in range(repeats)]
    return np.stack(out)
