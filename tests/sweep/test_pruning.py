"""The search that tells Optuna the truth about trials Tune ended (`mate.sweep.pruning`): a trial ASHA stopped is
PRUNED, an errored one FAIL (Ray's own OptunaSearch tells both COMPLETE with their last value, which would teach TPE a
half-trained or broken figure), and a trial re-run after a restore keeps its first answer."""

from __future__ import annotations

import optuna
import pytest

from mate.sweep.pruning import PruningSearch


@pytest.fixture()
def searcher(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")

    def make(stopped=None):
        return PruningSearch(space={"x": optuna.distributions.FloatDistribution(0, 1)}, metric="m", mode="max",
                             study_name="s", storage=storage, stopped=set() if stopped is None else stopped)

    def told():
        return [(t.state.name, t.value) for t in optuna.load_study(study_name="s", storage=storage).trials]

    return make, told, storage


def test_stopped_trials_are_pruned_errored_ones_fail_finished_ones_complete(searcher):
    make, told, _ = searcher
    stopped: set = set()
    search = make(stopped)
    for tid in ("done", "cut", "broken"):
        assert search.suggest(tid) is not None
        search.on_trial_result(tid, {"m": 0.4, "training_iteration": 1})
    stopped.add("cut")  # what StoppingAsha records when it stops a trial before max_t
    search.on_trial_complete("done", {"m": 0.7, "training_iteration": 3})
    search.on_trial_complete("cut", {"m": 0.4, "training_iteration": 1})
    search.on_trial_complete("broken", None, error=True)
    assert told() == [("COMPLETE", 0.7), ("PRUNED", 0.4), ("FAIL", None)]  # Optuna keeps a pruned trial's last report


def test_a_trial_rerun_after_a_restore_does_not_report_into_its_finished_study_trial(searcher):
    """The race CI met: the saved study already holds a trial's answer while Tune's saved state still runs it, so
    the restored run repeats its last epochs and reports them again; Optuna refuses reports on a finished trial."""
    make, told, storage = searcher
    search = make()
    assert search.suggest("t1") is not None
    search.on_trial_result("t1", {"m": 0.1, "training_iteration": 1})
    optuna.load_study(study_name="s", storage=storage).tell(0, 0.2)  # the saved study: told before the kill
    search.on_trial_result("t1", {"m": 0.2, "training_iteration": 2})  # the re-run's report: ignored, no error
    search.on_trial_complete("t1", {"m": 0.3, "training_iteration": 2})  # its end again: the first answer stays
    assert told() == [("COMPLETE", 0.2)]
