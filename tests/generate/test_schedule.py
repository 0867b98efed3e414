"""The cosine schedule and the DDIM step: the properties the sampler relies on."""

from __future__ import annotations

import pytest
import torch

from mate.generate.schedule import CosineSchedule


@pytest.mark.parametrize("steps", [1, 10, 100, 1000])
def test_alphas_cumprod_decrease_inside_the_open_unit_interval(steps):
    ab = CosineSchedule(steps).alphas_cumprod
    assert len(ab) == steps
    assert bool(((ab > 0) & (ab < 1)).all())
    assert bool((ab[1:] < ab[:-1]).all())
    if steps >= 100:
        assert ab[0] > 0.999 and ab[-1] < 1e-3  # almost clean at the first step, almost pure noise at the last


def test_q_sample_at_t0_is_nearly_x0_and_at_the_end_nearly_noise():
    s = CosineSchedule(100)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 12, 5, generator=g), torch.randn(4, 12, 5, generator=g)
    first = s.q_sample(x0, torch.zeros(4, dtype=torch.long), noise)
    last = s.q_sample(x0, torch.full((4,), 99), noise)
    assert (first - x0).pow(2).mean().sqrt() < 0.05 and (last - noise).pow(2).mean().sqrt() < 0.05
    assert torch.equal(s.q_sample(x0, torch.full((4,), -1), noise), x0)  # t = -1: no noise at all


def test_ddim_timesteps_are_distinct_descending_and_end_at_zero():
    s = CosineSchedule(100)
    assert s.ddim_timesteps(1) == [99]  # one step starts from pure noise
    for n in (2, 5, 50, 100, 500):
        ts = s.ddim_timesteps(n)
        assert ts[0] == 99 and ts[-1] == 0 and len(ts) == min(n, 100)
        assert ts == sorted(set(ts), reverse=True)


def test_ddim_step_with_the_true_x0_stays_on_the_same_noise_path():
    s = CosineSchedule(50)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(3, 8, 4, generator=g), torch.randn(3, 8, 4, generator=g)
    x_t = s.q_sample(x0, torch.full((3,), 40), eps)
    x_prev = s.ddim_step(x_t, x0, 40, 20)
    torch.testing.assert_close(x_prev, s.q_sample(x0, torch.full((3,), 20), eps), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(s.ddim_step(x_t, x0, 40, -1), x0, atol=1e-5, rtol=1e-5)
