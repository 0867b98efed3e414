"""The private Ray / Optuna attributes the platform touches (`mate.sweep.private_api`) still exist and still mean what
the code assumes: an upgrade that moves one fails here, by name, instead of in the middle of a sweep."""

from __future__ import annotations

import optuna
import pytest

from mate.sweep.private_api import HEAD_RESOURCE, optuna_search_completed, optuna_search_trials


@pytest.fixture()
def search(tmp_path):
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    optuna.create_study(study_name="s", storage=storage, direction="maximize")

    def space(trial):
        trial.suggest_float("x", 0.0, 1.0)

    return OptunaSearch(space=space, metric="val/m", mode="max", study_name="s", storage=storage,
                        sampler=optuna.samplers.RandomSampler(seed=0)), storage


def test_optuna_search_keeps_the_optuna_trial_of_each_tune_trial(search):
    search, _ = search
    config = search.suggest("tune-a")
    asked = optuna_search_trials(search)
    assert set(asked) == {"tune-a"} and isinstance(asked["tune-a"], optuna.Trial)
    assert asked["tune-a"].params == config and asked["tune-a"].number == 0


def test_optuna_search_records_the_trials_it_told(search):
    search, storage = search
    search.suggest("tune-a")
    search.suggest("tune-b")
    told = optuna_search_completed(search)
    assert isinstance(told, set) and not told
    search.on_trial_complete("tune-a", {"val/m": 0.5})
    assert optuna_search_completed(search) == {"tune-a"}
    # a trial the pruning search has told itself is added to the same set, and Ray's own path then leaves it alone
    told.add("tune-b")
    search.on_trial_complete("tune-b", {"val/m": 0.9})
    states = [t.state.name for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == ["COMPLETE", "RUNNING"]


def test_the_head_resource_is_rays_own_name():
    from ray._common.constants import HEAD_NODE_RESOURCE_NAME

    assert HEAD_RESOURCE == HEAD_NODE_RESOURCE_NAME
