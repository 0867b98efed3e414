"""The one table from a parameter's kind to its Optuna and Tune forms (`mate.sweep.space.kinds`): every kind both
ways, and what TPE samples through the define-by-run function is the distribution the table names."""

from __future__ import annotations

import numbers

import pytest

from mate.sweep.space.kinds import KINDS, Param, optuna_distribution, suggest, tune_sampler

PARAMS = [
    Param("align.sigma_scale", "uniform", 0.5, 2.0),
    Param("align.sigma_scale", "loguniform", 0.25, 4.0, log=True),
    Param("align.prototypes_per_word", "int", 1, 7, step=2),
    Param("align.prototypes_per_word", "int", 1, 64, log=True),
    Param("align.prior", "choice", choices=("none", "binary", "gaussian_full")),
]


def test_every_kind_has_a_row_and_every_row_is_tested():
    assert {p.kind for p in PARAMS} == set(KINDS)


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: f"{p.kind}{'-log' if p.log else ''}{'-step' if p.step else ''}")
def test_optuna_distribution_and_suggestion_agree(p):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = optuna_distribution(p)
    want = {"uniform": FloatDistribution, "loguniform": FloatDistribution, "int": IntDistribution,
            "choice": CategoricalDistribution}[p.kind]
    assert type(dist) is want
    if p.kind == "choice":
        assert dist.choices == p.choices
    else:
        assert (dist.low, dist.high, dist.log) == (p.low, p.high, p.log)
        if p.kind == "int":
            assert dist.step == (p.step or 1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        value = suggest(trial, p)
        assert trial.distributions[p.name] == dist  # the study records the table's distribution
        assert dist._contains(dist.to_internal_repr(value))
        study.tell(trial, 0.0)


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: f"{p.kind}{'-log' if p.log else ''}{'-step' if p.step else ''}")
def test_tune_sampler_draws_the_same_values(p):
    from ray.tune.search.sample import Categorical, Float, Integer, LogUniform

    domain = tune_sampler(p)
    draws = domain.sample(size=400, random_state=0)
    if p.kind == "choice":
        assert isinstance(domain, Categorical) and list(domain.categories) == list(p.choices)
        assert set(draws) == set(p.choices)
        return
    assert min(draws) >= p.low and max(draws) <= p.high
    if p.step:  # Optuna's grid from low: 1, 3, 5, 7
        assert sorted(set(draws)) == list(range(p.low, p.high + 1, p.step))
        return
    assert isinstance(domain, Integer if p.kind == "int" else Float)
    assert isinstance(domain.get_sampler(), LogUniform) == p.log
    if p.kind == "int":
        assert all(isinstance(v, numbers.Integral) for v in draws)
        assert max(draws) == p.high  # the file's bounds are inclusive, Tune's randint upper bound is not
