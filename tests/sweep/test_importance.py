"""Whether a knob matters beyond seed noise (mate.sweep.importance), on objectives made here: a grid with seeds gets a
blocked analysis of variance, a search Optuna's importances against shuffled objectives."""

from __future__ import annotations

import numpy as np
import optuna
import pytest

from mate.sweep.importance import knob_effects, study_importances


def _grid(effect: float, seed_shift: float = 1.0, noise: float = 0.05, seeds: int = 3, rng_seed: int = 0):
    """Knob `a` (3 levels) moves the objective by `effect` at its top level, knob `b` (2 levels) does nothing; each
    seed shifts every point of the grid together, as a seed does in a sweep."""
    rng = np.random.default_rng(rng_seed)
    out = []
    for s in range(seeds):
        shift = rng.normal(0, seed_shift)
        for a in ("0.5", "1.0", "2.0"):
            for b in ("x", "y"):
                out.append(({"seed": str(s), "a": a, "b": b}, shift + effect * (a == "2.0") + rng.normal(0, noise)))
    return out


def test_a_planted_knob_matters_and_a_knob_without_effect_does_not():
    effects = {e.knob: e for e in knob_effects(_grid(effect=0.2), ["a", "b"])}
    assert effects["a"].matters and effects["a"].p < 0.001 and effects["a"].eta2 > 0.5
    assert not effects["b"].matters and effects["b"].verdict == "within seed noise"
    assert effects["a"].design.startswith("additive over the grid, blocked by seed")
    assert effects["a"].spread == pytest.approx(0.2, abs=0.1)
    assert effects["a"].noise_sd == pytest.approx(0.05, rel=0.6)  # the seed shifts are out of the residual


def test_the_seed_block_finds_what_a_one_way_test_misses():
    records = _grid(effect=0.2, seed_shift=1.0)
    blocked = {e.knob: e for e in knob_effects(records, ["a", "b"])}["a"]
    pooled = [({**p, "seed": "0"}, v) for p, v in records]  # the same values, seeds unknown
    one_way = {e.knob: e for e in knob_effects(pooled, ["a", "b"])}["a"]
    assert blocked.matters and not one_way.matters
    assert one_way.design.endswith("no seed blocks") and one_way.noise_sd > 5 * blocked.noise_sd


def test_one_factor_at_a_time_tests_each_knob_on_the_base_slice():
    rng = np.random.default_rng(3)
    records = []
    for s in range(3):
        shift = rng.normal(0, 1)
        for point in ({}, {"a": "2"}, {"a": "4"}, {"b": "y"}):
            p = {"seed": str(s), "a": "1", "b": "x", **point}
            records.append((p, shift + 0.5 * (p["a"] == "4") + rng.normal(0, 0.02)))
    effects = {e.knob: e for e in knob_effects(records, ["a", "b"])}
    assert effects["a"].runs == 9 and effects["a"].levels == ("1", "2", "4")  # b held at its base
    assert effects["b"].runs == 6 and effects["b"].levels == ("x", "y")       # a held at its base
    assert effects["a"].matters and not effects["b"].matters
    assert effects["a"].design.startswith("one knob at a time")


def test_a_figure_that_never_moves_has_no_effect_and_an_exact_difference_has_all():
    """Both cases leave no residual; rounding in the fit (sums of squares of 1e-33 where every value is equal) must
    not turn a constant figure into an infinite F (it did: a tiny test's word-pair accuracy, 0 in every run)."""
    flat = [({"seed": str(s), "a": a, "b": b}, 0.0) for s in range(2) for a in ("1", "2") for b in ("x", "y")]
    for value in (0.0, 0.1234):
        records = [(p, value) for p, _ in flat]
        assert {(e.f, e.p, e.eta2) for e in knob_effects(records, ["a", "b"])} == {(0.0, 1.0, 0.0)}
    shifted = [(p, 0.3 + 0.5 * (p["a"] == "2") + 0.1 * int(p["seed"])) for p, _ in flat]  # a moves it, b does not
    effects = {e.knob: e for e in knob_effects(shifted, ["a", "b"])}
    assert (effects["a"].f, effects["a"].p, effects["a"].matters) == (float("inf"), 0.0, True)
    assert (effects["b"].f, effects["b"].p, effects["b"].matters) == (0.0, 1.0, False)


def test_a_half_run_ablation_is_judged_on_its_complete_seeds_only():
    """Seen on the prior ablation midway: seed 1 had run two of four points, whose compositional accuracy (steps of
    1/123) differed by the same amount on both seeds; fitted with seed 0's four runs that left one residual degree of
    freedom, an exact fit, F = inf and "matters". Only seeds that ran every point can block."""
    comp = {("base", "0"): 11 / 123, ("none", "0"): 16 / 123, ("binary", "0"): 15 / 123, ("segment", "0"): 14 / 123,
            ("base", "1"): 16 / 123, ("none", "1"): 21 / 123}
    records = [({"seed": s, "prior": k}, v) for (k, s), v in comp.items()]
    (half,) = knob_effects(records, ["prior"])
    assert (half.f, half.p, half.matters, half.runs, half.seeds) == (None, None, False, 4, 1)
    assert "2 run(s) of seeds missing a point left out" in half.design
    done = records + [({"seed": "1", "prior": "binary"}, 19 / 123), ({"seed": "1", "prior": "segment"}, 15 / 123)]
    (full,) = knob_effects(done, ["prior"])
    assert (full.runs, full.seeds, full.df) == (8, 2, (3, 3)) and "left out" not in full.design
    assert full.p is not None and 0 < full.p < 1


def test_without_replicates_nothing_is_claimed_and_nan_runs_are_left_out():
    records = [({"seed": "0", "a": a}, v) for a, v in (("1", 0.1), ("2", 0.5), ("3", 0.2))]
    (only,) = knob_effects(records + [({"seed": "1", "a": "1"}, float("nan"))], ["a"])
    assert only.p is None and only.f is None and only.runs == 3
    assert only.verdict.startswith("cannot tell")
    assert knob_effects([], ["a"]) == [] and knob_effects(records, []) == []


def _study(n: int, planted: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    study.optimize(lambda t: planted * t.suggest_float("offset", 0, 1) + 0 * t.suggest_float("width", 0.25, 4, log=True)
                   + rng.normal(0, 0.05), n_trials=n)
    return study


@pytest.mark.slow
def test_optuna_importances_are_judged_against_shuffled_objectives():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    items = {i.param: i for i in study_importances(_study(12, planted=1.0), permutations=19)[0]}
    assert items["offset"].p < 0.1 and items["offset"].raw > items["offset"].null95
    assert items["width"].p > 0.1 and "within noise" in items["width"].verdict
    assert items["offset"].importance + items["width"].importance == pytest.approx(1.0)
    # pure noise: fANOVA still hands out 100%, the shuffles say it is noise
    noise = study_importances(_study(12, planted=0.0, seed=1), permutations=19)[0]
    assert sum(i.importance for i in noise) == pytest.approx(1.0) and all(i.p > 0.1 for i in noise)
    none, note = study_importances(_study(2, planted=1.0))
    assert none == [] and "too few" in note
    flat = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    flat.optimize(lambda t: 0 * t.suggest_float("a", 0, 1) + 0.25, n_trials=5)  # fANOVA alone would raise here
    none, note = study_importances(flat)
    assert none == [] and "takes one value over the 5 completed trials" in note
