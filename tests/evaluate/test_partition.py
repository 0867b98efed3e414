"""The optimal motion partition: DP against brute force, prefix-sum windows against direct pooling, planted truth."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from mate.evaluate.partition import (
    equal_split,
    frame_iou,
    frames_to_tokens,
    mean_frame_iou,
    optimal_partition,
    optimal_partitions,
    partition_clip,
    partition_dataset,
    prefix_sums,
    tokens_to_frames,
    window_costs,
    window_means,
)


def _brute_force(table: np.ndarray, min_len: int):
    num, length = table.shape[0], table.shape[1] - 1
    best, best_spans = np.inf, None
    for cuts in itertools.combinations(range(1, length), num - 1):
        bounds = (0, *cuts, length)
        spans = list(zip(bounds[:-1], bounds[1:]))
        if any(e - s < min_len for s, e in spans):
            continue
        cost = sum(table[n, s, e] for n, (s, e) in enumerate(spans))
        if cost < best:
            best, best_spans = cost, spans
    return best_spans, best


def _cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_dp_equals_brute_force_on_random_tables():
    rng = np.random.default_rng(0)
    cases = 0
    for num in range(1, 5):
        for _ in range(40):
            length = int(rng.integers(num, 13))
            min_len = int(rng.integers(1, 4))
            table = rng.uniform(0.0, 2.0, (num, length + 1, length + 1))
            expected_spans, expected = _brute_force(table, min_len)
            if expected_spans is None:
                with pytest.raises(ValueError, match="no feasible partition"):
                    optimal_partition(table, min_len)
                continue
            spans, cost = optimal_partition(table, min_len)
            assert cost == pytest.approx(expected, abs=1e-12)
            assert spans == expected_spans
            cases += 1
    assert cases > 100


def test_batched_dp_with_mixed_sizes_equals_brute_force():
    rng = np.random.default_rng(10)
    tables = []
    for _ in range(60):
        num = int(rng.integers(1, 5))
        length = int(rng.integers(2 * num, 12))
        tables.append(rng.uniform(0.0, 2.0, (num, length + 1, length + 1)))
    solved = optimal_partitions(tables, min_len=2)
    for table, (spans, cost) in zip(tables, solved):
        expected_spans, expected = _brute_force(table, 2)
        assert spans == expected_spans and cost == pytest.approx(expected, abs=1e-12)


def test_dp_respects_forbidden_windows():
    table = np.zeros((2, 7, 7))
    table[0, 0, 3] = np.inf  # the otherwise first-found split is forbidden
    table[1, 2, 6] = np.nan
    spans, cost = optimal_partition(table, min_len=2)
    assert cost == 0.0
    assert spans[0] != (0, 3) and spans[1] != (2, 6)
    assert spans[0][0] == 0 and spans[-1][1] == 6 and all(e - s >= 2 for s, e in spans)


def test_prefix_sum_window_scores_equal_direct_computation():
    rng = np.random.default_rng(1)
    f = rng.standard_normal((23, 12)) + 3.0  # a large common offset stresses the prefix-sum cancellation
    e = rng.standard_normal((3, 12))
    table = window_costs(f, e, min_len=2)
    assert table.shape == (3, 24, 24)
    for n in range(3):
        for s in range(24):
            for t in range(24):
                if t - s >= 2:
                    assert table[n, s, t] == pytest.approx(1 - _cos(e[n], f[s:t].mean(0)), abs=1e-10)
                else:
                    assert table[n, s, t] == np.inf
    np.testing.assert_allclose(prefix_sums(f)[-1], f.sum(0))
    s, t, means = window_means(f, min_len=1)
    assert len(s) == 23 * 24 // 2
    np.testing.assert_allclose(means, [f[a:b].mean(0) for a, b in zip(s, t)], atol=1e-12)


def test_pooled_window_scores_equal_direct_computation():
    rng = np.random.default_rng(2)
    head = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 6)).double()
    f = rng.standard_normal((15, 8))
    e = rng.standard_normal((2, 6))

    def pool(x):
        with torch.no_grad():
            return head(torch.from_numpy(np.asarray(x, dtype=np.float64)))

    table = window_costs(f, e, min_len=1, pool=pool)
    for n in range(2):
        for s in range(15):
            for t in range(s + 1, 16):
                z = pool(f[s:t].mean(0, keepdims=True).astype(np.float32)).numpy()[0]
                assert table[n, s, t] == pytest.approx(1 - _cos(e[n], z), abs=1e-6)


def _planted(rng, num, length, dim=32, noise=0.05, min_len=2):
    directions = np.linalg.qr(rng.standard_normal((dim, num)))[0].T * 3.0  # orthogonal block directions
    cuts = np.sort(rng.choice(np.arange(min_len, length - min_len + 1), num - 1, replace=False))
    while num > 1 and np.any(np.diff(np.r_[0, cuts, length]) < min_len):
        cuts = np.sort(rng.choice(np.arange(min_len, length - min_len + 1), num - 1, replace=False))
    bounds = np.r_[0, cuts, length].astype(int)
    feats = np.concatenate([np.tile(directions[n], (bounds[n + 1] - bounds[n], 1)) for n in range(num)])
    feats += noise * rng.standard_normal(feats.shape)
    spans = [(int(bounds[n]), int(bounds[n + 1])) for n in range(num)]
    return feats, directions, spans


def test_planted_partition_is_recovered_exactly():
    rng = np.random.default_rng(3)
    for num in (1, 2, 3, 4):
        for _ in range(10):
            feats, subtexts, truth = _planted(rng, num, int(rng.integers(4 * num, 50)))
            assert partition_clip(feats, subtexts, min_len=2) == truth
            assert frame_iou(partition_clip(feats, subtexts, min_len=2), truth) == 1.0


def test_partition_dataset_matches_per_clip_and_pool_path():
    rng = np.random.default_rng(4)
    clips = [_planted(rng, int(rng.integers(1, 4)), int(rng.integers(12, 50))) for _ in range(30)]
    feats = [c[0] for c in clips]
    subs = [torch.from_numpy(c[1]).float() for c in clips]  # torch input is accepted too
    spans = partition_dataset(feats, subs, min_len=2)
    assert spans == [c[2] for c in clips]
    assert spans == [partition_clip(f, s, min_len=2) for f, s in zip(feats, subs)]
    # identity head through the pool path (tiny pool_batch forces several calls) gives the same partitions
    calls = []

    def identity(x):
        calls.append(len(x))
        return x

    assert partition_dataset(feats, subs, min_len=2, pool=identity, pool_batch=3000) == spans
    assert len(calls) > 1 and max(calls) <= 3000


def test_batched_scoring_equals_one_clip_at_a_time_on_random_clips():
    # padding clips of different lengths and sub-text counts together must not change any clip's answer
    rng = np.random.default_rng(8)
    feats = [rng.standard_normal((int(rng.integers(3, 40)), 16)) for _ in range(50)]
    subs = [rng.standard_normal((int(rng.integers(1, 4)), 16)) for _ in range(50)]
    batched = partition_dataset(feats, subs, min_len=1, chunk_elements=1 << 16)
    assert batched == [partition_clip(f, e) for f, e in zip(feats, subs)]
    for f, e, spans in zip(feats[:10], subs[:10], batched[:10]):
        expected_spans, _ = _brute_force(window_costs(f, e), 1)
        assert spans == expected_spans


def test_short_clip_relaxes_min_len_and_too_short_raises():
    f = np.random.default_rng(5).standard_normal((5, 4))
    e = np.random.default_rng(6).standard_normal((3, 4))
    spans = partition_dataset([f], [e], min_len=4)[0]  # 5 < 3 * 4: min_len becomes 1
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == 5
    with pytest.raises(ValueError, match="cannot hold"):
        partition_dataset([f[:2]], [e], min_len=1)


def test_partition_dataset_covers_every_clip_with_and_without_a_head():
    """Its speed is a benchmark's (BENCHMARKS.md, the optimal partition); here: every clip is covered end to end with
    one span per sub-text, through the plain features and through a projection head."""
    rng = np.random.default_rng(7)
    feats = [rng.standard_normal((int(rng.integers(10, 51)), 256)).astype(np.float32) for _ in range(200)]
    subs = [rng.standard_normal((int(rng.integers(1, 4)), 256)).astype(np.float32) for _ in range(200)]
    proj = torch.nn.Linear(256, 128)

    def head(x):
        with torch.no_grad():
            return proj(x)

    for spans in (partition_dataset(feats, subs, min_len=2),
                  partition_dataset(feats, [s[:, :128] for s in subs], min_len=2, pool=head)):
        assert len(spans) == 200
        for s, f, e in zip(spans, feats, subs):
            assert len(s) == e.shape[0] and s[0][0] == 0 and s[-1][1] == f.shape[0]
            assert all(a[1] == b[0] for a, b in zip(s, s[1:])) and all(b - a >= 2 for a, b in s)


def test_token_frame_conversions():
    assert tokens_to_frames([(0, 3), (3, 7), (7, 12)], num_frames=49) == [(0, 12), (12, 28), (28, 49)]
    assert tokens_to_frames([(0, 12)], num_frames=48) == [(0, 48)]
    assert frames_to_tokens([(0, 10), (10, 30), (30, 49)], num_tokens=12) == [(0, 3), (3, 8), (8, 12)]


def test_frame_iou_and_equal_split():
    truth = [(0, 10), (10, 30), (30, 40)]
    assert frame_iou(truth, truth) == 1.0
    assert frame_iou([(0, 20), (20, 40)], [(0, 10), (10, 40)]) == pytest.approx((10 / 20 + 20 / 30) / 2)
    assert frame_iou([(0, 40)], truth) == pytest.approx((10 / 40) / 3)  # missing segments count 0
    assert mean_frame_iou([truth, [(0, 40)]], [truth, [(0, 20), (20, 40)]]) == pytest.approx((1 + 0.25) / 2)
    assert equal_split(10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert equal_split(196, 1) == [(0, 196)]
    spans = equal_split(50, 4)
    assert spans[0][0] == 0 and spans[-1][1] == 50 and all(b[0] == a[1] for a, b in zip(spans, spans[1:]))
    with pytest.raises(ValueError):
        equal_split(2, 3)
