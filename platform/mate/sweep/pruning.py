"""ASHA that remembers whom it stopped early, and an OptunaSearch that tells Optuna those trials were PRUNED and
errored ones FAIL (Ray's own tells both COMPLETE with their last value, which would teach TPE a half-trained or broken
figure). Imported by the driver only when a search runs: it imports Ray and Optuna."""

from __future__ import annotations

import optuna
from optuna.trial import TrialState
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from mate.sweep.private_api import optuna_search_completed, optuna_search_trials


class StoppingAsha(ASHAScheduler):
    """ASHA that adds the id of every trial it stops before `max_t` to the shared set `stopped`."""

    def __init__(self, *, stopped: set, time_attr: str, max_t: int, **kw):
        super().__init__(time_attr=time_attr, max_t=max_t, **kw)
        self.stopped, self.horizon = stopped, (time_attr, max_t)

    def on_trial_result(self, tune_controller, trial, result):
        action = super().on_trial_result(tune_controller, trial, result)
        time_attr, max_t = self.horizon
        if action == TrialScheduler.STOP and result.get(time_attr, 0) < max_t:
            self.stopped.add(trial.trial_id)
        return action


class PruningSearch(OptunaSearch):
    """OptunaSearch that tells PRUNED for the trials in `stopped`, FAIL for errored ones, and skips trials Optuna has
    already been told about (a restored sweep re-runs a trial whose end its saved state missed)."""

    def __init__(self, *a, stopped: set, study_name: str, storage, **kw):
        super().__init__(*a, study_name=study_name, storage=storage, **kw)
        self.stopped, self.storage = stopped, storage
        self.study = optuna.load_study(study_name=study_name, storage=storage)
        self.study_id = storage.get_study_id_from_name(study_name)

    def on_trial_complete(self, trial_id, result=None, error=False):
        asked, told = optuna_search_trials(self), optuna_search_completed(self)
        if trial_id in asked and trial_id not in told:
            if self._finished(trial_id):
                # a driver killed after telling Optuna but before Tune saved its state: the restored trial ran again
                # (from its checkpoint); Optuna keeps its first answer
                told.add(trial_id)
                return
            if error or trial_id in self.stopped:
                # an errored trial is FAIL even when it reported epochs before (Ray would tell its last value)
                self.study.tell(asked[trial_id].number, None, state=TrialState.FAIL if error else TrialState.PRUNED)
                told.add(trial_id)
                return
        super().on_trial_complete(trial_id, result, error)

    def on_trial_result(self, trial_id, result):
        if trial_id in optuna_search_trials(self) and self._finished(trial_id):
            # a trial Tune re-runs after a restore (its saved state lagged the study): Optuna has its answer and
            # refuses reports on a finished trial (UpdateFinishedTrialError would end the sweep)
            return
        super().on_trial_result(trial_id, result)

    def _finished(self, trial_id) -> bool:
        number = optuna_search_trials(self)[trial_id].number
        stored = self.storage.get_trial_id_from_study_id_trial_number(self.study_id, number)
        return self.storage.get_trial(stored).state.is_finished()
