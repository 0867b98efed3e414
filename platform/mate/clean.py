"""`mate clean`: remove the workspace caches that no run references; anything removed is rebuilt on demand.

Referenced: the dataset packs, scoring evaluators, motion tokenizers and align stages that some run.json under the
workspace names (`runs/`, `sweeps/`). Always kept: the LLM segmentation answers (`cache/segments`: asking again costs
money and time) and the synthetic corpora in `data/`. Removed: unreferenced packs, evaluators (partition models
included: the align stages built from them are cached), align stages, the derived caches no run names (text features,
localization), and the temporary leftovers of crashed writers. An entry whose lock is held (a sweep using it right
now) is skipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from mate.cache import FileLock

KEEP_ALWAYS = ("segments",)


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def references(workspace: Path) -> dict[str, set[str]]:
    refs: dict[str, set[str]] = {"packs": set(), "evaluators": set(), "align": set(), "tokenizers": set()}
    for folder in ("runs", "sweeps"):
        for run in (workspace / folder).rglob("run.json") if (workspace / folder).is_dir() else []:
            try:
                info = json.loads(run.read_text())
            except (OSError, json.JSONDecodeError):
                continue
            refs["packs"].add(str(info.get("dataset_hash") or ""))
            refs["evaluators"].update(str(info.get(k) or "") for k in ("evaluator_sha", "val_evaluator_sha"))
            refs["tokenizers"].add(str(info.get("tokenizer_sha") or ""))
            if info.get("align_dir"):
                refs["align"].add(Path(info["align_dir"]).name)
    return refs


def _referenced(kind: str, entry: Path, refs: dict[str, set[str]]) -> bool:
    if kind == "packs":
        return entry.name in refs["packs"] or entry.name == "aliases"
    if kind in ("evaluators", "tokenizers"):
        meta = entry / "meta.json"
        return meta.is_file() and json.loads(meta.read_text()).get("sha") in refs[kind]
    if kind == "align":
        return entry.name in refs["align"]
    return False  # text features, localization: derived, never named by a run


def plan(workspace: str | Path) -> list[tuple[Path, int]]:
    """(path, bytes) of every cache entry `clean` would remove."""
    cache = Path(workspace) / "cache"
    if not cache.is_dir():
        return []
    refs = references(Path(workspace))
    out = []
    for kind_dir in sorted(p for p in cache.iterdir() if p.is_dir() and p.name not in KEEP_ALWAYS):
        for entry in sorted(kind_dir.iterdir()):
            if entry.name.endswith(".lock"):
                continue
            stale = entry.name.startswith(".") and ".tmp" in entry.name
            if stale or not _referenced(kind_dir.name, entry, refs):
                out.append((entry, _size(entry)))
    return out


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def clean(workspace: str | Path, dry_run: bool = False) -> tuple[list[Path], int]:
    removed, freed = [], 0
    for path, size in plan(workspace):
        if dry_run:
            removed.append(path)
            freed += size
            continue
        lock_path = path.with_name(path.name + ".lock")
        if path.name.startswith("."):  # a crashed writer's temporary: nobody locks it
            _remove(path)
        else:
            try:
                with FileLock(lock_path, timeout=0.2):
                    _remove(path)
                lock_path.unlink(missing_ok=True)
            except TimeoutError:
                continue  # in use right now
        removed.append(path)
        freed += size
    return removed, freed
