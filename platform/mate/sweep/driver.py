"""`mate sweep`: prepare, then a Tune run of `run_trial` trials (Optuna TPE / NSGA-II, or a grid), logged to MLflow by
the driver, with a results table and best.yaml at the end (docs/architecture.md §8).

Layout under `<workspace>/sweeps/<name>/`: `space.json` (what the sweep was started with: a changed space is refused),
`tune/run-<k>/` (one Tune run per invocation; an unfinished one is restored, a finished search is extended by a new
run on the same Optuna study and MLflow parent, a finished grid runs nothing again), `results.csv`, `best.yaml`.
Optuna's study lives in `<workspace>/optuna.db`, MLflow in `<workspace>/mlflow.db` unless --tracking-uri says
otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mate.errors import UserError

FINISHED = ".finished"
EXPECTED = ".expected-trials"  # how many trials the Tune run was started for: fewer ended means it was cut short
LIMITS = ".limits.json"  # the budget limits the Tune run was started with: a restored run keeps them


@dataclass
class SweepOptions:
    workspace: Path
    name: str | None = None
    data: str | None = None
    address: str | None = None
    num_samples: int | None = None
    max_concurrent: int | None = None
    gpus_per_trial: float | None = None
    cpus_per_trial: int | None = None
    retry_failed: bool = False
    tracking_uri: str | None = None
    storage: str | None = None
    prepare_only: bool = False
    progress: bool = True
    variant: str | None = None


@dataclass
class TuneInputs:
    """What a new Tune run of a sweep is built from (`_new_tuner`)."""

    space: Any
    name: str  # the sweep's (and its Optuna study's) name
    opts: SweepOptions
    trainable: Any  # the resourced trial function
    optuna_storage: Any
    stopped: set  # ids of the trials ASHA stops early, shared by the scheduler and the search
    run_config: dict  # tune.RunConfig keywords but the run's name


def _runs(store, tune_rel: str) -> list[str]:
    names = [n for n in store.list_dirs(tune_rel) if n.startswith("run-") and n.split("-")[1].isdigit()]
    return sorted(names, key=lambda n: int(n.split("-")[1]))


def check_inputs(opts: SweepOptions):
    """Bad input is one clear message before Ray starts or any trial runs: a storage that cannot be written, a
    dataset that is not there. Returns the sweep's Storage (the workspace's `sweeps/` folder when none is given)."""
    from mate.storage import Storage
    from mate.sweep.prepare import check_data

    if opts.data:
        check_data(opts.data)
    store = Storage(opts.storage or Path(opts.workspace).resolve() / "sweeps")
    store.check_writable()
    return store


def _unreachable(address: str, why: str) -> UserError:
    return UserError(f"--address {address}: no Ray cluster reachable there ({why}); start one (ray start --head / "
                     "ray up) or leave --address out for a local Ray")


def probe(address: str) -> None:
    """Ray keeps retrying an address where nothing listens (minutes, then a warning flood): knock first."""
    import socket

    host, _, port = address.rpartition(":")
    if address in ("auto", "local") or "://" in address or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as exc:
        raise _unreachable(address, exc.strerror or str(exc)) from None


def connect(address: str | None, shared_storage: bool) -> None:
    """Start or join Ray. A named cluster that cannot be reached is a message, not a traceback or a hang; a cluster
    of several nodes needs shared storage, or trials elsewhere would look for the driver's files."""
    import ray

    env = {"env_vars": {"TOKENIZERS_PARALLELISM": "false"}}
    if address is None:
        # Ray starts workers at nice 15, so on a machine we share with our own driver (Tune's loop, the MLflow
        # callback) and Ray's daemons every one of them pre-empted the trials: +10-16% wall time over a plain loop
        # in bench/overhead_bench.py, -2% at nice 0. A local sweep runs at the priority `mate train` would.
        env["env_vars"]["RAY_worker_niceness"] = os.environ.get("RAY_worker_niceness", "0")
        ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False, runtime_env=env)
        return
    # our source travels with the job (docs/architecture.md §8): the driver's `mate` package, first on the workers'
    # path, so the code that runs is the code submitted, not whatever a node installed at `ray up`
    env["py_modules"] = [str(Path(__file__).resolve().parents[1])]
    probe(address)
    try:
        # trial output reaches the driver, so `ray job logs` shows it (a local run keeps the terminal to Tune's table)
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=True, runtime_env=env)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise _unreachable(address, str(exc).splitlines()[0][:200]) from None
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) > 1 and not shared_storage:
        ray.shutdown()
        raise UserError(f"--address {address}: the cluster has {len(nodes)} nodes; pass --storage (an NFS path or "
                        "s3://bucket/prefix) so trials on every node reach the prepared data and checkpoints")


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


def _study(space, storage, name: str):
    """A search's Optuna study (for its importances in the closing report); None for grids."""
    from mate.sweep.importance import load_study

    return load_study(storage, name) if space.is_search else None


def _named_study(space, storage, name: str) -> None:
    """Create the search's study before OptunaSearch loads it (it creates with load_if_exists), so that it carries
    the objectives' names: optuna-dashboard then says `val/...` instead of "Objective 0"."""
    import warnings

    import optuna

    study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                directions=["maximize" if m == "max" else "minimize" for m in space.modes])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(list(space.metrics))


def run_sweep(space_path: str | Path, opts: SweepOptions, log: Callable[[str], None] = print) -> dict[str, Any]:
    import optuna
    import ray
    from ray import tune

    from mate.storage import is_uri
    from mate.sweep.callback import MlflowSweepCallback, StateCallback
    from mate.sweep.placement import check_packing, cluster_worker_types, driver_threads, trial_gpus
    from mate.sweep.prepare import prepare, prepare_on_gpu_worker
    from mate.sweep.report import write_report
    from mate.sweep.rerun import run_replicates
    from mate.sweep.space import check_resumable, load_space
    from mate.sweep.state import restore as restore_state
    from mate.sweep.state import save_or_say
    from mate.sweep.trainable import trial_function
    from mate.tracking import Tracker, default_uri

    space = load_space(space_path, opts.variant)
    if space.constants.get("encoder.path"):  # a model folder that is not one fails here, not in the prepare stage
        from mate.text.families import resolve_path

        resolve_path(space.constants["encoder.path"])
    name = opts.name or space.name
    ws = Path(opts.workspace).resolve()
    store = check_inputs(opts)
    if opts.storage:  # the stores outlive this machine (docs/architecture.md §8): back before anything opens them
        restore_state(store, ws, log)
    sweep_dir = ws / "sweeps" / name
    ident = sweep_dir / "space.json"
    if ident.is_file():
        check_resumable(json.loads(ident.read_text()), space)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    ident.write_text(json.dumps(space.identity(), indent=1, sort_keys=True))

    connect(opts.address, shared_storage=opts.storage is not None)
    budget = space.budget
    cpus = float(opts.cpus_per_trial or budget.cpus_per_trial)
    gpus = trial_gpus(float(opts.gpus_per_trial if opts.gpus_per_trial is not None else budget.gpus_per_trial),
                      on_cluster=opts.address is not None, cluster_gpus=ray.cluster_resources().get("GPU", 0), log=log)
    if opts.address is not None:
        for note in check_packing(cpus, gpus, *cluster_worker_types()):
            log(f"sweep: {note}")
        driver_threads(log)
    if opts.address is not None and opts.storage and gpus > 0:  # trainings on a GPU worker, not the head's CPU
        data = opts.data if not opts.data or is_uri(opts.data) else str(Path(opts.data).expanduser().resolve())
        pinned, shipped = prepare_on_gpu_worker(space, name, data, store, cpus=cpus, log=log)
    else:
        pinned, shipped = prepare(space, ws, opts.data, storage=store if opts.storage else None,
                                  progress=opts.progress, log=log)
    if opts.prepare_only:
        return {"pinned": pinned, "shipped": shipped}

    trainable = tune.with_resources(
        tune.with_parameters(trial_function, space=space, workspace=str(ws), pinned=pinned, cpus=cpus, gpus=gpus,
                             shipped=shipped),
        {"cpu": cpus, "gpu": gpus})

    tracker = Tracker(opts.tracking_uri or default_uri(ws), ws)
    experiment = tracker.experiment(name)
    parent = tracker.run(experiment, {"sweep": name, "mate.role": "parent"}, name=name)
    tracker.log_params(parent, {"space": str(space_path), **pinned, **space.constants})
    stopped: set[str] = set()
    callback = MlflowSweepCallback(tracker, experiment, parent, name, stopped, pinned, space)

    tune_rel = f"{name}/tune"
    previous = _runs(store, tune_rel)
    storage = optuna.storages.RDBStorage(f"sqlite:///{ws / 'optuna.db'}")
    callbacks = [callback] + ([StateCallback(store, ws)] if opts.storage else [])
    run_config = dict(storage_path=store.url(tune_rel), callbacks=callbacks,
                      failure_config=tune.FailureConfig(max_failures=budget.max_failures),
                      checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
                      sync_config=tune.SyncConfig(sync_artifacts=True), verbose=1 if opts.progress else 0)
    last = f"{tune_rel}/{previous[-1]}" if previous else None
    # a grid is fixed by its space (a changed one is refused), so a finished grid has nothing left to run but,
    # on request, its failed trials; only a search grows (--num-samples)
    last_done = bool(last) and store.exists(f"{last}/{FINISHED}")
    grid_done = last_done and not space.is_search
    if last and (not last_done or (grid_done and opts.retry_failed)) and tune.Tuner.can_restore(store.url(last)):
        log(f"sweep: restoring {previous[-1]} ({store.url(last)})")
        tuner = tune.Tuner.restore(store.url(last), trainable, resume_unfinished=True,
                                   resume_errored=opts.retry_failed)
        run_rel = last
        expected = int(store.read_text(f"{last}/{EXPECTED}")) if store.is_file(f"{last}/{EXPECTED}") else 0
        say_kept_limits(store, last, run_limits(space, opts), log)
    elif grid_done:
        log(f"sweep: the grid's {space.num_trials} trials ran to the end in {previous[-1]}; nothing to run "
            "(--retry-failed runs its failed trials again)")
        tuner, run_rel = None, last
    else:
        run_rel = f"{tune_rel}/run-{len(previous) + 1}"
        inputs = TuneInputs(space, name, opts, trainable, storage, stopped, run_config)
        tuner, expected = _new_tuner(inputs, run_rel.rsplit("/", 1)[1], log)
        if tuner is not None:
            store.write_text(f"{run_rel}/{EXPECTED}", str(expected))
            store.write_text(f"{run_rel}/{LIMITS}", json.dumps(run_limits(space, opts)))
    finished = True  # a search with every sample done starts no run
    if tuner is not None:
        finished = fit_run(tuner, expected, space, store, run_rel, log)
        if finished:
            close_leftovers(tracker, experiment, name, storage, log)
    if finished and space.rerun:
        if opts.storage:
            mirror_results(store, tune_rel, sweep_dir / "tune")
        run_replicates(space, opts, store, tune_rel, trainable, run_config, sweep_dir, log)
    if opts.storage:
        mirror_results(store, tune_rel, sweep_dir / "tune")
    report = write_report(space, name, sweep_dir, tracker, parent, study=_study(space, storage, name), log=log)
    summary = _publish(report, store, opts, name, sweep_dir)
    if opts.storage:
        save_or_say(store, ws)
    return summary


def fit_run(tuner, expected: int, space, store, run_rel: str, log: Callable[[str], None]) -> bool:
    """Run a Tune run to its end (or a signal); True, and its FINISHED marker, when every trial ended."""
    results, signalled = fit_until_stopped(tuner)
    # a run stopped by Ctrl-C or SIGTERM may show every trial it started as ended, with others never started
    finished = (not signalled and results.num_terminated + results.num_errors == len(results)
                and (len(results) >= expected or space.budget.time_budget_s is not None))
    errors = [r for r in results if r.error]
    if errors:
        log(f"sweep: {len(errors)} trial(s) failed (first: {errors[0].error!r}); --retry-failed runs them again")
    if finished:
        store.write_text(f"{run_rel}/{FINISHED}", "")
    else:
        log("sweep: stopped before every trial ended; the same command resumes it")
    return finished


RESULT_FILES = ("params.json", "result.json", "error.txt", "metrics.json", "run.json", "process.json")


def mirror_results(store, tune_rel: str, local: Path) -> None:
    """A remote sweep's per-trial results (not its checkpoints) into the workspace's `sweeps/<name>/tune/`, where
    the results table, `mate clean` and the report read them."""
    for rel in store.list_files(tune_rel):
        parts = rel.split("/")
        if parts[-1] in RESULT_FILES and "checkpoint" not in parts and not parts[-1].startswith("checkpoint_"):
            store.download(f"{tune_rel}/{rel}", local / rel)


def _publish(summary: dict[str, Any], store, opts: SweepOptions, name: str, sweep_dir: Path) -> dict[str, Any]:
    """With --storage, the results table, best.yaml and the report beside the Tune runs (docs/architecture.md §8)."""
    if opts.storage:
        for item in sorted(sweep_dir.iterdir()):
            if item.name not in ("tune", "space.json"):
                store.upload(item, f"{name}/{item.name}")
    return summary


def fit_until_stopped(tuner) -> tuple[Any, bool]:
    """`tuner.fit()`, with SIGTERM (`ray job stop`, a preempted node, `kill`) handled as Ctrl-C: Tune then stops the
    trials and saves its state to the storage before returning, instead of dying with a state older than the
    trials' checkpoints (which the restored sweep could no longer find). Returns (results, whether SIGTERM came)."""
    import os
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return tuner.fit(), False
    got = []

    def on_term(*_):
        got.append(True)
        os.kill(os.getpid(), signal.SIGINT)

    before = signal.signal(signal.SIGTERM, on_term)
    try:
        return tuner.fit(), bool(got)
    finally:
        signal.signal(signal.SIGTERM, before)


def close_leftovers(tracker, experiment: str, name: str, storage, log: Callable[[str], None]) -> None:
    """When the Tune run has ended nothing is running: MLflow child runs and Optuna trials still marked RUNNING were
    left by a killed driver, unknown to the restored state (docs/architecture.md §8). Close them as KILLED / FAIL."""
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


def run_limits(space, opts: SweepOptions, timed: bool = True) -> dict[str, Any]:
    """The limits a new Tune run starts with (`timed`: the search's run, which has the time budget)."""
    b = space.budget
    return {"max_concurrent": opts.max_concurrent or b.max_concurrent, "max_failures": b.max_failures,
            **({"time_budget_s": b.time_budget_s} if timed else {})}


def say_kept_limits(store, run_rel: str, wanted: dict[str, Any], log: Callable[[str], None]) -> None:
    """Tune restores a run's searcher and configs as they were saved (its concurrency limit is part of the searcher's
    state), so a changed limit cannot reach a run already under way: say so rather than ignore the flag silently."""
    if not store.is_file(f"{run_rel}/{LIMITS}"):
        return
    kept = json.loads(store.read_text(f"{run_rel}/{LIMITS}"))
    changed = [f"{k} {kept[k]} (asked: {wanted[k]})" for k in wanted if k in kept and kept[k] != wanted[k]]
    if changed:
        log(f"sweep: {run_rel.rsplit('/', 1)[1]} keeps the limits it started with, as Tune restores them: "
            f"{', '.join(changed)}; a new value applies from the sweep's next run (an extension)")


def _new_tuner(inputs: TuneInputs, run_name: str, log: Callable[[str], None]):
    """A new Tune run: the search's remaining samples (None when none remain) or every grid trial; with how many
    trials it starts."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    space, name, opts, storage, stopped = inputs.space, inputs.name, inputs.opts, inputs.optuna_storage, inputs.stopped
    budget = space.budget
    concurrency = opts.max_concurrent or budget.max_concurrent
    if space.is_search:
        done = sum(n for s, n in _study_counts(storage, name).items() if s in ("COMPLETE", "PRUNED", "FAIL"))
        target = opts.num_samples or budget.num_samples
        todo = target - done
        if todo <= 0:
            log(f"sweep: {done} of {target} trials done; --num-samples N (N > {done}) extends the sweep")
            return None, 0
        metric = space.metrics if space.multi_objective else space.metrics[0]
        mode = space.modes if space.multi_objective else space.modes[0]
        from mate.sweep.pruning import PruningSearch, StoppingAsha

        _named_study(space, storage, name)
        search = PruningSearch(space=space.sample, metric=metric, mode=mode, sampler=space.optuna_sampler(),
                               study_name=name, storage=storage, stopped=stopped)
        scheduler = (StoppingAsha(stopped=stopped, time_attr="gen/epoch", max_t=space.max_epochs,
                                  grace_period=budget.grace_period, metric=metric, mode=mode)
                     if space.scheduler == "asha" else FIFOScheduler())
        tune_config = tune.TuneConfig(search_alg=search, scheduler=scheduler, num_samples=todo,
                                      max_concurrent_trials=concurrency, time_budget_s=budget.time_budget_s,
                                      reuse_actors=True)
        param_space = None
        log(f"sweep: {todo} trial(s) ({done} done before), {space.algorithm} on {metric}")
        expected = todo
    else:
        tune_config = tune.TuneConfig(num_samples=1, max_concurrent_trials=concurrency,
                                      time_budget_s=budget.time_budget_s, metric=space.metrics[0],
                                      mode=space.modes[0], reuse_actors=True)
        param_space = space.tune_param_space()
        log(f"sweep: {space.num_trials} grid trial(s)")
        expected = space.num_trials
    return tune.Tuner(inputs.trainable, param_space=param_space, tune_config=tune_config,
                      run_config=tune.RunConfig(name=run_name, **inputs.run_config)), expected
