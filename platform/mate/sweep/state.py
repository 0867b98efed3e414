"""The workspace's stores (the Optuna study `optuna.db` and the MLflow SQLite `mlflow.db`) kept on `--storage`, so a
sweep outlives the machine that drove it (`ray down` deletes the head's disk; the Tune runs already live on the
storage).

With `--storage`, the driver restores missing stores from `<storage>/state/` before it opens them, and saves a
consistent snapshot (SQLite's online backup, safe while the store is written) after every trial that starts or ends
and when the sweep ends. A driver killed between two saves loses at most the trials that ended in between, and Tune
re-runs those from their checkpoints; the MLflow callback finds a trial's run again by its tags and the Optuna
searcher keeps an answer it already gave, so nothing is duplicated. On a cluster the MLflow server serves the
workspace's `mlflow.db`; `mate state restore` brings it back before the server starts (ray_cluster.yaml).

One workspace per storage, at one path: Tune's saved searcher names the Optuna store by its absolute path, so a
sweep continues from a workspace at the path that saved it (on a cluster the head's `~/mate-runs`, the same on every
new head); another path is refused before anything runs.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from pathlib import Path

from mate.errors import UserError

STORES = ("optuna.db", "mlflow.db")
PREFIX = "state"
ORIGIN = "workspace.txt"  # the absolute path of the workspace whose stores these are


def restore(store, workspace: str | Path, log: Callable[[str], None] = print) -> list[str]:
    """Download each store the workspace lacks and the storage has; returns the names restored. A store the
    workspace already has is newer than its copy (this machine wrote it last) and stays."""
    ws = Path(workspace).expanduser().resolve()
    if store.is_file(f"{PREFIX}/{ORIGIN}"):
        origin = store.read_text(f"{PREFIX}/{ORIGIN}").strip()
        if origin != str(ws):
            raise UserError(f"{store.url(PREFIX)} holds the stores of the workspace {origin}, and Tune's saved "
                            f"searcher reads the Optuna study there: continue with --workspace {origin} (a fresh "
                            "folder at that path is fine), or give this workspace its own --storage")
    done = []
    for name in STORES:
        rel = f"{PREFIX}/{name}"
        if not (ws / name).exists() and store.is_file(rel):
            ws.mkdir(parents=True, exist_ok=True)
            store.download(rel, ws / name)
            done.append(name)
    if done:
        log(f"state: restored {', '.join(done)} from {store.url(PREFIX)}")
    return done


def save(store, workspace: str | Path) -> list[str]:
    """Upload a consistent snapshot of each store the workspace has; returns the names saved."""
    ws = Path(workspace).expanduser().resolve()
    saved = []
    with tempfile.TemporaryDirectory(prefix="mate-state-") as tmp:
        for name in STORES:
            if not (ws / name).is_file():
                continue
            copy = Path(tmp) / name
            src, dst = sqlite3.connect(ws / name), sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            store.upload(copy, f"{PREFIX}/{name}")
            saved.append(name)
    if saved:
        store.write_text(f"{PREFIX}/{ORIGIN}", str(ws))
    return saved


def save_or_say(store, workspace: str | Path) -> None:
    """`save` for the sweep driver (after each trial starts and ends, and at the end): a failing save is printed, not
    raised, since a storage hiccup must not stop the sweep; the next save retries. It prints through the builtin at
    call time: Tune pickles its callbacks with the run, and a Ray Job's driver replaces `print`, so a captured log
    function would no longer pickle."""
    try:
        save(store, workspace)
    except Exception as exc:  # noqa: BLE001
        print(f"state: could not save the stores to {store.url(PREFIX)} ({exc}); the next save retries", flush=True)
