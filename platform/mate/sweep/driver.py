"""`mate sweep`: prepare, then a Tune run of `run_trial` trials (Optuna TPE / NSGA-II, or a grid), logged to MLflow by
the driver, with a results table and best.yaml at the end (DESIGN 5).

Layout under `<workspace>/sweeps/<name>/`: `space.json` (what the sweep was started with: a changed space is refused),
`tune/run-<k>/` (one Tune run per invocation; an unfinished one is restored, a finished one is extended by a new run
on the same Optuna study and MLflow parent), `results.csv`, `best.yaml`. Optuna's study lives in
`<workspace>/optuna.db`, MLflow in `<workspace>/mlflow.db` unless --tracking-uri says otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


FINISHED = ".finished"


@dataclass
class SweepOptions:
    workspace: Path
    name: str | None = None
    data: str | None = None
    address: str | None = None
    num_samples: int | None = None
    max_concurrent: int | None = None
    gpus_per_trial: float | None = None
    retry_failed: bool = False
    tracking_uri: str | None = None
    progress: bool = True


def _pruning_classes():
    """ASHA that remembers whom it stopped early, and an OptunaSearch that tells Optuna those trials were PRUNED and
    errored ones FAIL (Ray's own tells both COMPLETE with their last value, which would teach TPE a half-trained or
    broken figure)."""
    from optuna.trial import TrialState
    from ray.tune.schedulers import ASHAScheduler, TrialScheduler
    from ray.tune.search.optuna import OptunaSearch

    class Asha(ASHAScheduler):
        def __init__(self, *, stopped: set, **kw):
            super().__init__(**kw)
            self.stopped = stopped

        def on_trial_result(self, tune_controller, trial, result):
            action = super().on_trial_result(tune_controller, trial, result)
            if action == TrialScheduler.STOP and result.get(self._time_attr, 0) < self._max_t:
                self.stopped.add(trial.trial_id)
            return action

    class Search(OptunaSearch):
        def __init__(self, *a, stopped: set, **kw):
            super().__init__(*a, **kw)
            self.stopped = stopped

        def on_trial_complete(self, trial_id, result=None, error=False):
            if trial_id not in self._completed_trials and trial_id in self._ot_trials and (
                    error or trial_id in self.stopped):
                # an errored trial is FAIL even when it reported epochs before (Ray would tell its last value)
                state = TrialState.FAIL if error else TrialState.PRUNED
                self._ot_study.tell(self._ot_trials[trial_id], None, state=state)
                self._completed_trials.add(trial_id)
                return
            super().on_trial_complete(trial_id, result, error)

    return Asha, Search


def _runs(tune_dir: Path) -> list[Path]:
    return sorted((p for p in tune_dir.glob("run-*") if p.is_dir()), key=lambda p: int(p.name.split("-")[1]))


def _study_counts(storage, name: str) -> dict[str, int]:
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return {}
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def run_sweep(space_path: str | Path, opts: SweepOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    import optuna
    import ray
    from ray import tune

    from mate.sweep.callback import MlflowSweepCallback
    from mate.sweep.prepare import prepare
    from mate.sweep.report import write_report
    from mate.sweep.space import check_resumable, load_space
    from mate.sweep.trainable import trial_function
    from mate.tracking import Tracker, default_uri

    space = load_space(space_path)
    name = opts.name or space.name
    ws = Path(opts.workspace).resolve()
    sweep_dir = ws / "sweeps" / name
    ident = sweep_dir / "space.json"
    if ident.is_file():
        check_resumable(json.loads(ident.read_text()), space)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    ident.write_text(json.dumps(space.identity(), indent=1, sort_keys=True))

    ray.init(address=opts.address, ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}} if opts.address is None else None)
    pinned = prepare(space, ws, opts.data, progress=opts.progress, log=log)

    budget = space.budget
    cpus = float(budget.cpus_per_trial)
    gpus = float(opts.gpus_per_trial if opts.gpus_per_trial is not None else budget.gpus_per_trial)
    if gpus > 0 and ray.cluster_resources().get("GPU", 0) == 0:
        log(f"sweep: no GPU in the cluster: trials run on CPU (asked for {gpus} GPU each)")
        gpus = 0.0
    trainable = tune.with_resources(
        tune.with_parameters(trial_function, space=space, workspace=str(ws), pinned=pinned, cpus=cpus),
        {"cpu": cpus, "gpu": gpus})

    tracker = Tracker(opts.tracking_uri or default_uri(ws), ws)
    experiment = tracker.experiment(name)
    parent = tracker.run(experiment, {"sweep": name, "mate.role": "parent"}, name=name)
    tracker.log_params(parent, {"space": str(space_path), **pinned, **space.constants})
    stopped: set[str] = set()
    callback = MlflowSweepCallback(tracker, experiment, parent, name, stopped, pinned, space)

    tune_dir = sweep_dir / "tune"
    previous = _runs(tune_dir)
    storage = optuna.storages.RDBStorage(f"sqlite:///{ws / 'optuna.db'}")
    run_config = dict(storage_path=str(tune_dir), callbacks=[callback],
                      failure_config=tune.FailureConfig(max_failures=budget.max_failures),
                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2), verbose=1 if opts.progress else 0)
    if previous and not (previous[-1] / FINISHED).exists() and tune.Tuner.can_restore(str(previous[-1])):
        log(f"sweep: restoring {previous[-1].name}")
        tuner = tune.Tuner.restore(str(previous[-1]), trainable, resume_unfinished=True,
                                   resume_errored=opts.retry_failed)
        run_dir = previous[-1]
    else:
        run_dir = tune_dir / f"run-{len(previous) + 1}"
        tuner = _new_tuner(space, name, opts, trainable, storage, stopped, run_dir, run_config, log)
        if tuner is None:
            return write_report(space, name, sweep_dir, tracker, parent, log=log)
    results = tuner.fit()
    (run_dir / FINISHED).write_text("")
    errors = [r for r in results if r.error]
    if errors:
        log(f"sweep: {len(errors)} trial(s) failed (first: {errors[0].error!r}); --retry-failed runs them again")
    close_leftovers(tracker, experiment, name, storage, log)
    return write_report(space, name, sweep_dir, tracker, parent, log=log)


def close_leftovers(tracker, experiment: str, name: str, storage, log: Callable[[str], None]) -> None:
    """When the Tune run has ended nothing is running: MLflow child runs and Optuna trials still marked RUNNING were
    left by a killed driver and are unknown to the restored state (DESIGN 5). Close them as KILLED / FAIL."""
    import optuna
    from optuna.trial import TrialState

    stale = tracker.find_runs(experiment, {"sweep": name}, status="RUNNING")
    for run in stale:
        if run.tags.get("mate.role") != "parent":
            tracker.finish(run.run_id, "KILLED")
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        study = None
    running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))] if study else []
    for t in running:
        study.tell(t.number, state=TrialState.FAIL)
    closed = len([r for r in stale if r.tags.get("mate.role") != "parent"])
    if closed or running:
        log(f"sweep: closed {closed} MLflow run(s) and {len(running)} Optuna trial(s) a killed driver left RUNNING")


def _new_tuner(space, name, opts, trainable, storage, stopped, run_dir, run_config, log):
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    budget = space.budget
    Asha, Search = _pruning_classes()
    concurrency = opts.max_concurrent or budget.max_concurrent
    if space.is_search:
        done = sum(n for s, n in _study_counts(storage, name).items() if s in ("COMPLETE", "PRUNED", "FAIL"))
        target = opts.num_samples or budget.num_samples
        todo = target - done
        if todo <= 0:
            log(f"sweep: {done} of {target} trials done; --num-samples N (N > {done}) extends the sweep")
            return None
        metric = space.metrics if space.multi_objective else space.metrics[0]
        mode = space.modes if space.multi_objective else space.modes[0]
        search = Search(space=space.sample, metric=metric, mode=mode, sampler=space.optuna_sampler(),
                        study_name=name, storage=storage, stopped=stopped)
        scheduler = (Asha(stopped=stopped, time_attr="gen/epoch", max_t=space.max_epochs,
                          grace_period=budget.grace_period, metric=metric, mode=mode)
                     if space.scheduler == "asha" else FIFOScheduler())
        tune_config = tune.TuneConfig(search_alg=search, scheduler=scheduler, num_samples=todo,
                                      max_concurrent_trials=concurrency, time_budget_s=budget.time_budget_s,
                                      reuse_actors=False)
        param_space = None
        log(f"sweep: {todo} trial(s) ({done} done before), {space.algorithm} on {metric}")
    else:
        tune_config = tune.TuneConfig(num_samples=1, max_concurrent_trials=concurrency,
                                      time_budget_s=budget.time_budget_s, metric=space.metrics[0],
                                      mode=space.modes[0])
        param_space = space.tune_param_space()
        log(f"sweep: {space.num_trials} grid trial(s)")
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                      run_config=tune.RunConfig(name=run_dir.name, **run_config))
