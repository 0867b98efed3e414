"""T2M metrics and intervals against closed forms, chance levels and known quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mate.evaluate.bootstrap import (
    Z95,
    bootstrap,
    bootstrap_se95,
    ci95,
    interval_text,
    mean_ci,
    t_interval,
    t_quantile_975,
)
from mate.evaluate.metrics import (
    diversity,
    evaluate_embeddings,
    evaluate_real,
    fid,
    frechet_distance,
    mm_dist,
    multimodality,
    r_precision,
    r_precision_ceiling,
)


def _exact_moments(rng, n, mu, cov):
    """n samples whose sample mean is exactly mu and whose unbiased sample covariance is exactly cov."""
    d = mu.shape[0]
    z = rng.standard_normal((n, d))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T  # cov(z) = I
    return mu + z @ np.linalg.cholesky(cov).T


def _rotation(theta):
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


# ---------------------------------------------------------------------------------------------------------- FID


def test_fid_of_a_set_with_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((500, 64))
    assert fid(x, x) == pytest.approx(0.0, abs=1e-6)
    # rank-deficient covariance (fewer samples than dimensions) too
    y = np.random.default_rng(1).standard_normal((40, 128))
    assert fid(y, y) == pytest.approx(0.0, abs=1e-6)


def test_frechet_distance_diagonal_closed_form():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(0.1, 3.0, 16), rng.uniform(0.1, 3.0, 16)
    mu1, mu2 = rng.standard_normal(16), rng.standard_normal(16)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_rotated_non_commuting_closed_form():
    # 2x2: Tr((S1 S2)^{1/2}) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)) (eigenvalues of S1 S2 are positive)
    s1 = np.diag([4.0, 0.25])
    r = _rotation(0.7)
    s2 = r @ np.diag([2.0, 0.5]) @ r.T
    mu1, mu2 = np.array([1.0, -2.0]), np.array([0.5, 0.5])
    tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_fid_from_samples_matches_closed_form():
    rng = np.random.default_rng(3)
    s1 = np.diag([4.0, 0.25])
    r = _rotation(-1.1)
    s2 = r @ np.diag([1.5, 0.3]) @ r.T
    mu1, mu2 = np.array([0.0, 1.0]), np.array([2.0, -1.0])
    x, y = _exact_moments(rng, 300, mu1, s1), _exact_moments(rng, 400, mu2, s2)
    tr_sqrt = math.sqrt(np.trace(s1 @ s2) + 2 * math.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt
    assert fid(x, y) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_high_dim_matches_scipy_sqrtm():
    scipy_linalg = pytest.importorskip("scipy.linalg")
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((64, 32)), rng.standard_normal((64, 32))
    s1, s2 = a.T @ a / 64, b.T @ b / 64 + 0.1 * np.eye(32)
    mu = rng.standard_normal(32)
    covmean = scipy_linalg.sqrtm(s1 @ s2).real
    expected = mu @ mu + np.trace(s1 + s2 - 2 * covmean)
    assert frechet_distance(mu, s1, np.zeros(32), s2) == pytest.approx(expected, rel=1e-7)


def test_frechet_distance_singular_covariances_stay_finite():
    s = np.zeros((8, 8))
    s[0, 0] = 1.0
    value = frechet_distance(np.zeros(8), s, np.ones(8), s)
    assert value == pytest.approx(8.0, abs=1e-9)


# ------------------------------------------------------------------------------------------- R-Precision, MM-Dist


def test_r_precision_perfect_and_mm_dist_zero():
    x = np.random.default_rng(0).standard_normal((32 * 10 + 7, 16))
    assert r_precision(x, x).tolist() == [1.0, 1.0, 1.0]
    assert mm_dist(x, x) == pytest.approx(0.0, abs=1e-12)


def test_r_precision_random_is_chance():
    rng = np.random.default_rng(1)
    t, m = rng.standard_normal((32 * 400, 8)), rng.standard_normal((32 * 400, 8))
    top = r_precision(t, m)
    np.testing.assert_allclose(top, [1 / 32, 2 / 32, 3 / 32], atol=0.02)


def test_r_precision_counts_rank_inside_batch():
    # one batch of 4 in 1-D, ranks worked out by hand
    text = np.array([[0.0], [10.0], [20.0], [30.0]])
    motion = np.array([[0.0], [10.9], [19.0], [30.0]])  # every text's own motion is its nearest
    assert r_precision(text, motion, batch_size=4, top_k=1).tolist() == [1.0]
    motion = np.array([[0.0], [14.0], [10.0], [30.0]])
    # text 1 (10): motion 2 at 0 beats its own at 4; text 2 (20): motion 1 at 6 beats its own at 10, and motion 3
    # ties at 10 but comes later in the batch, so both texts rank their motion second
    assert r_precision(text, motion, batch_size=4, top_k=3).tolist() == [0.5, 1.0, 1.0]


def test_r_precision_drops_incomplete_batch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((40, 4))
    y = x.copy()
    y[32:] = rng.standard_normal((8, 4)) * 100  # only in the dropped tail
    assert r_precision(x, y).tolist() == [1.0, 1.0, 1.0]
    assert mm_dist(x, y) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="full batch"):
        r_precision(x[:31], y[:31])


def test_collapsed_generator_scores_chance_not_perfect():
    # every generated motion identical: all distances tie; the stable rule ranks by position (1/32 at top-1)
    t = np.random.default_rng(3).standard_normal((64, 8))
    g = np.zeros((64, 8))
    np.testing.assert_allclose(r_precision(t, g), [1 / 32, 2 / 32, 3 / 32])


def test_r_precision_ids_make_duplicates_harmless():
    x = np.random.default_rng(4).standard_normal((32, 8))
    idx = np.repeat(np.arange(16), 2)  # every item twice, copies adjacent
    t = x[idx]
    assert r_precision(t, t)[0] == 0.5  # second copy ranks behind the first
    assert r_precision(t, t, ids=idx)[0] == 1.0


def test_mm_dist_known_value():
    t = np.zeros((64, 3))
    m = np.zeros((64, 3))
    m[:, 0] = 2.0
    assert mm_dist(t, m) == pytest.approx(2.0)


# -------------------------------------------------------------------------------------- Diversity, MultiModality


def test_diversity_of_identical_motions_is_zero():
    x = np.tile(np.random.default_rng(0).standard_normal((1, 32)), (400, 1))
    assert diversity(x, times=300, seed=0) == pytest.approx(0.0, abs=1e-12)


def test_diversity_matches_expected_pair_distance():
    # for two independent N(0, I_d) points, E||x - y||^2 = 2d
    x = np.random.default_rng(0).standard_normal((20000, 4))
    d = np.linalg.norm(x[:10000] - x[10000:], axis=1).mean()  # reference mean distance
    assert diversity(x, times=10000, seed=1) == pytest.approx(d, rel=0.03)
    assert diversity(x[:50], times=300, seed=0) > 0  # smaller set than `times`: uses len


def test_multimodality_of_identical_samples_is_zero_and_positive_otherwise():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((20, 1, 16))
    assert multimodality(np.repeat(base, 30, axis=1), times=10, seed=0) == pytest.approx(0.0, abs=1e-12)
    noisy = np.repeat(base, 30, axis=1) + rng.standard_normal((20, 30, 16))
    assert multimodality(noisy, times=10, seed=0) > 1.0


# ------------------------------------------------------------------------------------------------------ intervals


def test_ci95_is_the_t2m_convention():
    v = np.array([1.0, 2.0, 3.0, 4.0])
    assert ci95(v) == pytest.approx(1.96 * np.std(v) / 2, rel=1e-4)
    assert ci95([5.0]) == 0.0
    mean, half = mean_ci(v)
    assert mean == 2.5 and half == pytest.approx(ci95(v))


def test_bootstrap_interval_of_a_mean_matches_analytic():
    sigma, n = 2.0, 400
    x = np.random.default_rng(0).normal(5.0, sigma, n)
    values = bootstrap(lambda idx: x[idx].mean(), n, repeats=2000, seed=1)
    assert values.shape == (2000,)
    analytic = sigma / math.sqrt(n)
    assert values.std(ddof=1) == pytest.approx(analytic, rel=0.15)
    mean, half = mean_ci(values, method="bootstrap")
    assert half == pytest.approx(Z95 * analytic, rel=0.15)
    assert mean == pytest.approx(x.mean(), abs=0.05)
    assert bootstrap_se95(values) == half


def test_bootstrap_is_deterministic_and_array_valued():
    x = np.arange(10.0)
    a = bootstrap(lambda idx: [x[idx].min(), x[idx].max()], 10, repeats=5, seed=3)
    b = bootstrap(lambda idx: [x[idx].min(), x[idx].max()], 10, repeats=5, seed=3)
    assert a.shape == (5, 2) and np.array_equal(a, b)


@pytest.mark.parametrize("dof, q", [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (60, 2.000),
                                    (120, 1.980), (10**6, 1.960)])
def test_t_quantiles(dof, q):
    assert t_quantile_975(dof) == pytest.approx(q, abs=1e-3)


def test_t_quantiles_match_scipy():
    stats = pytest.importorskip("scipy.stats")
    for dof in list(range(1, 40)) + [50, 100, 1000]:
        assert t_quantile_975(dof) == pytest.approx(stats.t.ppf(0.975, dof), abs=1e-6)


def test_t_interval_three_seeds():
    mean, half = t_interval([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.303 * 1.0 / math.sqrt(3), rel=1e-3)
    assert math.isnan(t_interval([1.0])[1])


def test_interval_text_is_the_seed_table_cell():
    assert interval_text([1.0, 2.0, 3.0]) == "2.000 ± 2.484"  # t_{0.975,2} = 4.303
    assert interval_text([1.0, float("nan"), None, 3.0]) == "2.000 ± 12.706"  # missing seeds left out
    assert interval_text([0.5]) == "0.500" and interval_text([None, float("nan")]) == "-" and interval_text([]) == "-"


# -------------------------------------------------------------------------------------------- repeated evaluation


def _pairs(rng, n=256, d=16, noise=0.3):
    motion = rng.standard_normal((n, d))
    text = motion + noise * rng.standard_normal((n, d))
    return text, motion


def test_evaluate_embeddings_names_and_values():
    rng = np.random.default_rng(0)
    text, real = _pairs(rng)
    gen = real + 0.5 * rng.standard_normal(real.shape)
    mm = rng.standard_normal((20, 12, 16))
    out = evaluate_embeddings(text, real, gen, repeats=5, seed=0, mm_emb=mm)
    names = ["fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "diversity",
             "multimodality"]
    assert set(out) == {f"eval/{n}" for n in names} | {f"eval/{n}_ci95" for n in names}
    assert all(math.isfinite(v) for v in out.values())
    assert out["eval/fid"] > 0 and out["eval/fid_ci95"] > 0  # whole-set statistic gets an interval
    assert out["eval/r_precision_top1"] <= out["eval/r_precision_top2"] <= out["eval/r_precision_top3"]
    assert out == evaluate_embeddings(text, real, gen, repeats=5, seed=0, mm_emb=mm)  # deterministic
    real_row = evaluate_real(text, real, repeats=5, seed=0)
    assert "eval/multimodality" not in real_row
    assert real_row["eval/fid"] == pytest.approx(0.0, abs=1e-6)
    assert real_row["eval/r_precision_top1"] > out["eval/r_precision_top1"]  # noisier generations retrieve worse
    assert real_row["eval/mm_dist"] < out["eval/mm_dist"]


def test_evaluate_embeddings_bootstrap_spread_and_interval_kinds():
    rng = np.random.default_rng(1)
    text, real = _pairs(rng, n=320)
    gen = real + 0.5 * rng.standard_normal(real.shape)
    t2m = evaluate_embeddings(text, real, gen, repeats=16, seed=2)
    boot = evaluate_embeddings(text, real, gen, repeats=16, seed=2, ci="bootstrap", prefix="val/eval/")
    assert boot["val/eval/fid"] == t2m["eval/fid"] == fid(real, gen)  # FID's value is the whole set's
    assert boot["val/eval/r_precision_top1"] == t2m["eval/r_precision_top1"]
    # bootstrap half-width = 1.96 std(ddof=1); t2m = 1.96 std(ddof=0) / sqrt(16)
    assert boot["val/eval/fid_ci95"] / t2m["eval/fid_ci95"] == pytest.approx(4 * math.sqrt(16 / 15), rel=1e-9)
    fixed = evaluate_embeddings(text, real, gen, repeats=4, seed=2, bootstrap=False)
    assert fixed["eval/fid_ci95"] == pytest.approx(0.0, abs=1e-9)  # same set every time: FID cannot move


def test_r_precision_ceiling():
    # every item its own meaning: nothing collides, the ceiling is 1
    out = r_precision_ceiling(np.arange(320), repeats=5, seed=0)
    assert out["same_meaning_rate"] == 0.0 and out["top1"] == 1.0
    # two meanings in equal halves, no resampling: in a batch of 32 each item has m ~ Hypergeom others alike;
    # the meaning-level ceiling E[1/(1+m)] is close to 1/16 and every item collides
    groups = np.arange(3200) % 2
    out = r_precision_ceiling(groups, repeats=5, seed=0, bootstrap=False)
    assert out["same_meaning_rate"] == 1.0
    m = np.random.default_rng(0).hypergeometric(1599, 1600, 31, size=200000)
    assert out["top1"] == pytest.approx(np.mean(1 / (1 + m)), rel=0.05)
    assert out["top1"] < out["top2"] < out["top3"] < 0.25
    # 100 meanings of 32 clips: P(at least one other of the same meaning among 31 others) ~ 1 - (1 - 31/3199)^31
    groups = np.arange(3200) % 100
    out = r_precision_ceiling(groups, repeats=20, seed=1, bootstrap=False)
    p_none = math.comb(3199 - 31, 31) / math.comb(3199, 31)
    assert out["same_meaning_rate"] == pytest.approx(1 - p_none, abs=0.02)
