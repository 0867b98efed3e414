"""`mate sweep`, `mate ablate` and `mate ui`."""

from __future__ import annotations

import argparse
from pathlib import Path

from mate.errors import UserError

DEFAULT_SPACE = "search_spaces/smoke.yaml"


def _space_path(value: str | None) -> Path:
    path = Path(value or DEFAULT_SPACE)
    if not path.is_file() and not value:  # run from elsewhere than the repository: the copy beside the package
        path = Path(__file__).resolve().parents[3] / DEFAULT_SPACE
    if not path.is_file():
        raise UserError(f"{value or DEFAULT_SPACE}: no such search-space file (the shipped ones are in search_spaces/)")
    return path


def _options(args):
    from mate.sweep.driver import SweepOptions

    g = args.gpus_per_trial
    if g is not None and (g < 0 or (g > 1 and not float(g).is_integer())):
        raise UserError(f"--gpus-per-trial {g:g}: a fraction of one GPU (0.5 packs two trials a GPU) or a whole "
                        "number of GPUs")
    if args.cpus_per_trial is not None and args.cpus_per_trial < 1:
        raise UserError(f"--cpus-per-trial {args.cpus_per_trial}: at least 1")

    return SweepOptions(workspace=Path(args.workspace), name=args.name, data=args.data, address=args.address,
                        num_samples=args.num_samples, max_concurrent=args.max_concurrent,
                        gpus_per_trial=args.gpus_per_trial, cpus_per_trial=args.cpus_per_trial,
                        retry_failed=args.retry_failed,
                        tracking_uri=args.tracking_uri, storage=args.storage,
                        prepare_only=getattr(args, "prepare_only", False), progress=not args.quiet,
                        variant=args.variant)


def _cmd_sweep(args: argparse.Namespace, grid_only: bool = False) -> int:
    from mate.sweep.space import load_space

    path = _space_path(args.space)
    opts = _options(args)
    space = load_space(path, args.variant)
    if grid_only and space.is_search:
        raise UserError(f"{path}: mate ablate runs grids (grid/ofat/points); this file is a search: mate sweep {path}")
    if args.dry_run:
        from mate.sweep.dryrun import describe

        print(describe(space, args.data))
        return 0
    from mate.sweep.driver import run_sweep

    run_sweep(path, opts)
    return 0


def ui_commands(workspace: Path, mlflow_port: int, optuna_port: int) -> list[list[str]]:
    """The MLflow UI and optuna-dashboard on the workspace's stores, both bound to 127.0.0.1 (never the network:
    reach them from elsewhere through an SSH tunnel)."""
    import sys

    ws = Path(workspace).resolve()
    mlflow = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{ws / 'mlflow.db'}",
              "--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
    bin_dir = Path(sys.executable).parent
    dashboard = [str(bin_dir / "optuna-dashboard"), f"sqlite:///{ws / 'optuna.db'}", "--host", "127.0.0.1",
                 "--port", str(optuna_port), "--quiet"]
    return [mlflow, dashboard]


def _cmd_ui(args: argparse.Namespace) -> int:
    import subprocess

    ws = Path(args.workspace)
    if not (ws / "mlflow.db").is_file():
        raise UserError(f"{ws}: no mlflow.db yet (run mate sweep or mate train --tracking-uri first)")
    procs = [subprocess.Popen(cmd) for cmd in ui_commands(ws, args.port, args.optuna_port)]
    print(f"MLflow UI:        http://127.0.0.1:{args.port}")
    print(f"Optuna dashboard: http://127.0.0.1:{args.optuna_port}" + ("" if (ws / "optuna.db").is_file() else
                                                                        " (no optuna.db yet: no sweep has run)"))
    print("Ctrl-C stops both.", flush=True)
    try:
        return max(p.wait() for p in procs)
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            p.terminate()


def _cmd_clean(args: argparse.Namespace) -> int:
    from mate.clean import clean

    removed, freed = clean(args.workspace, dry_run=args.dry_run)
    for path in removed:
        print(("would remove " if args.dry_run else "removed ") + str(path))
    verb = "would free" if args.dry_run else "freed"
    print(f"{len(removed)} cache entr{'y' if len(removed) == 1 else 'ies'}, {verb} {freed / 1e6:.1f} MB")
    return 0


def _cmd_state(args: argparse.Namespace) -> int:
    from mate.storage import Storage
    from mate.sweep.state import PREFIX, restore, save

    store = Storage(args.storage)
    if args.action == "save":
        saved = save(store, args.workspace)
        print(f"saved {', '.join(saved) or 'nothing (no store in the workspace)'} to {store.url(PREFIX)}")
    else:
        done = restore(store, args.workspace)
        if not done:
            print(f"nothing restored: the workspace has its stores, or {store.url(PREFIX)} has none")
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--name", help="sweep name (default: the space's name)")
    p.add_argument("--data", help="dataset folder or URI (s3://…) (default: the profile's synthetic corpus)")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--storage", help="shared storage for checkpoints, results and the prepared data: a local or NFS "
                                     "path, or s3://bucket/prefix (needed on a cluster of several nodes)")
    p.add_argument("--num-samples", type=int, help="total trials of a search (more than done: extends it)")
    p.add_argument("--max-concurrent", type=int, help="trials at a time (default: the space's budget); a run that "
                                                      "is resumed keeps the limit it started with")
    p.add_argument("--gpus-per-trial", type=float, help="e.g. 0.5 packs two trials a GPU (CPU when a local run has "
                                                        "none; a cluster waits for its GPU workers)")
    p.add_argument("--cpus-per-trial", type=int, help="CPUs a trial asks for (default: the space's budget); with a "
                                                      "GPU share it must let the trials pack on the worker type")
    p.add_argument("--tracking-uri", help="MLflow store (default sqlite:///<workspace>/mlflow.db)")
    p.add_argument("--retry-failed", action="store_true", help="restore and re-run failed trials")
    p.add_argument("--dry-run", action="store_true", help="print the trials and the estimated cost, run nothing")
    p.add_argument("--prepare-only", action="store_true",
                   help="run the prepare stage (and publish it to --storage), start no trial")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--variant", help="one of the space's `variants:` (e.g. paper: the real-data, GPU-sized setting)")


def add_parsers(sub) -> None:
    p = sub.add_parser("sweep", help="a Ray Tune + Optuna sweep of trials, logged to MLflow")
    p.add_argument("space", nargs="?", help=f"search-space YAML (default {DEFAULT_SPACE})")
    _common(p)
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("ablate", help="run a grid space over its seeds and print the ablation table")
    p.add_argument("space", help="a grid/ofat/points space, e.g. search_spaces/ablation_prior.yaml")
    _common(p)
    p.set_defaults(func=lambda a: _cmd_sweep(a, grid_only=True))
    from mate.sweep.mlflow_report import add_parser as _add_report

    _add_report(sub)
    p = sub.add_parser("clean", help="remove workspace caches that no run references (rebuilt on demand)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    p.set_defaults(func=_cmd_clean)
    p = sub.add_parser("state", help="save the workspace's Optuna and MLflow stores to --storage, or restore them "
                                     "into a fresh workspace (a sweep with --storage does both itself)")
    p.add_argument("action", choices=("save", "restore"))
    p.add_argument("--storage", required=True, help="the sweeps' storage: a local or NFS path, or s3://bucket/prefix")
    p.add_argument("--workspace", default="mate-runs")
    p.set_defaults(func=_cmd_state)
    p = sub.add_parser("ui", help="the MLflow UI over the workspace's runs (and how to open optuna-dashboard)")
    p.add_argument("--workspace", default="mate-runs")
    p.add_argument("--port", type=int, default=5000, help="MLflow UI port")
    p.add_argument("--optuna-port", type=int, default=8080, help="optuna-dashboard port")
    p.set_defaults(func=_cmd_ui)
