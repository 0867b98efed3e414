"""Search-space files (`search_spaces/*.yaml`): the schema, its validation, and the trials a file describes.

A file is validated whole before anything starts (docs/architecture.md §8); every error is one `ConfigError` naming the
file, the key path inside it and what is allowed. The schema (every section but `profile`, `objective` and one of the
four `search`/`grid`/`ofat`/`points` is optional):

    name: smoke                  # the sweep's name (default: the file's stem); --name overrides it
    description: one line        # free text
    profile: smoke               # tiny | smoke | bench | paper (config PROFILES): the trial sizes
    data_required: false         # true: the sweep refuses to start without --data DIR (a real dataset)
    constants:                   # config keys set in every trial, flat dotted or nested
      align.word_sampling: motion
    search:                      # TPE (NSGA-II with several objectives): one distribution per config key
      align.sigma_scale: {loguniform: [0.25, 4.0]}      # float keys: uniform | loguniform [low, high]
      align.prototypes_per_word: {int: [1, 4]}          # int keys: int [low, high] (inclusive; step, log optional)
      align.prior: {choice: [binary, gaussian_full]}    # any key: choice [values]
      align.prior_strength: {uniform: [0.5, 4.0], when: {align.prior: [binary, gaussian_full]}}
    grid:                        # or: a Cartesian product, first key slowest
      align.prototypes_per_word: [1, 2, 4]
    ofat:                        # or: one factor at a time around a base (the base point once)
      base: {align.prior: gaussian_full}
      vary: {align.prior: [none, binary], align.sigma_scale: [0.5, 2.0]}
    points:                      # or: an explicit list of points (override dicts; {} is the constants alone)
      - {}
      - {align.enabled: false}
    seeds: [0, 1, 2]             # see seed_mode below
    objective:                   # one {metric, mode} or a list of them; every metric is a val/* figure
      metric: val/probe/word_pair_acc
      mode: max
    budget:
      num_samples: 4             # trials a search samples (searches only; a grid runs points x seeds)
      max_epochs: 3              # generator epochs of every trial (sets gen.epochs; ASHA's max_t); default: profile's
      grace_period: 1            # ASHA: epochs before a trial may be stopped (<= max_epochs)
      cpus_per_trial: 1          # the trial's threads
      gpus_per_trial: 0          # may be fractional (<= 1) to share a GPU
      max_concurrent: 2          # trials at once
      time_budget_s: 300         # optional wall-clock cap of the sweep
      max_failures: 2            # Tune's retries of a failed trial, from its last checkpoint
    rerun: {top: 3, seeds: [1, 2, 3]}   # searches only: re-run the best configs over these replicate seeds
    variants:                    # --variant NAME: these fields over the file's (constants, budget merged); the
      paper: {profile: paper, data_required: true, budget: {gpus_per_trial: 0.5}}   # sweep is named <name>-NAME

Rules. Every parameter is a registered config key (mate.config.KEYS) whose type fits its distribution (uniform and
loguniform need a float key, int an int key; bool and str keys take `choice`) and every value is checked with
`check_value`. `profile`, `seed` and `gen.epochs` are set through `profile:`, `seeds:` and `budget.max_epochs`, never as
keys; keys the prepare stage fixes for a whole sweep (`data.*` but `data.random_crop`, `encoder.*`, `evaluator.*`, the
measurement keys `eval.scorer|official_dir|repeats|samples|pairs|val_items`, how the LLM is reached) and
stage seeds may be constants but never vary (`fixed_reason` says why). A key is a constant or a parameter, not both.
`search` never mixes with a grid (docs/architecture.md §8). Unknown keys anywhere, duplicate YAML keys and `1e-3` (YAML
1.1 text; write `1.0e-3`) are errors.

Conditional parameters: `when: {parent: value or [values], ...}` on a search parameter samples it only when every
parent (a `choice` parameter of the same search) took one of those values; otherwise the key keeps its constant /
profile / default value. Conditions may chain; cycles are refused.

seed_mode. A search is `derived`: one base seed (`seeds` absent = [0], or a single entry) seeds the sampler, and trial
number n runs with `derive_seed(base, "trial<n>")`: one seed per trial, never replicates (TPE must not see the same
config twice as two points). Grids are `replicates`: every point runs once per seed in `seeds` (default [0]), seed
the outer loop, so a partial run already holds every point. Replicates of a search's best configs: `rerun`.

Objectives are `val/` + a figure reported after every generator epoch (`eval/*` and `probe/*` of docs/architecture.md
§7): test figures never drive selection, and `val/align/*` rides on the first report only. One objective: TPE + ASHA on
generator epochs; several: NSGA-II (or a grid) with FIFO, never ASHA.

Resume: `fingerprint()` hashes everything except `name`, `description` and the budget keys a sweep's extension may
change (num_samples, max_concurrent, time_budget_s); `check_resumable(old, new)` names whatever else changed. The
trials, their configs, the Optuna/Tune objects and the dry-run live in `mate.sweep.grid` (re-exported here); the
structure is `mate.sweep.space_schema`, the meaning of the values `mate.sweep.space_check`.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from mate.config import ConfigError
from mate.sweep.grid import Space, check_resumable, estimate, format_estimate, format_trials
from mate.sweep.space_check import Checker, fixed_reason
from mate.sweep.space_schema import Budget, Objective, Param, Rerun, SpaceFile

__all__ = ["Budget", "ConfigError", "Objective", "Param", "Rerun", "Space", "check_resumable", "estimate",
           "fixed_reason", "format_estimate", "format_trials", "load_space"]


# -- loading -----------------------------------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    pass


class _Loader(yaml.SafeLoader):
    """Safe YAML that refuses a key given twice in one mapping (PyYAML would silently keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: set = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if key != "<<" and key in seen:
                raise _DuplicateKey(f"line {key_node.start_mark.line + 1}: key '{key}' is given twice")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


VARIANT_FIELDS = ("description", "profile", "data_required", "constants", "budget", "seeds", "objective")


def apply_variant(data: Mapping, variant: str | None, where: str) -> dict:
    """The file with one of its `variants:` applied: `constants` and `budget` merged over the file's own, the other
    fields replaced, the name suffixed (`<name>-<variant>`, a sweep of its own). Without a variant: the file as it is,
    less its `variants:` section."""
    data = dict(data)
    variants = data.pop("variants", None) or {}
    if not isinstance(variants, Mapping):
        raise ConfigError(f"{where}: variants: expected a mapping of variant name -> fields, got "
                          f"{type(variants).__name__}")
    if variant is None:
        return data
    if variant not in variants:
        have = ", ".join(sorted(variants)) or "none"
        raise ConfigError(f"{where}: --variant {variant}: no such variant (this file has: {have})")
    over = variants[variant]
    if not isinstance(over, Mapping):
        raise ConfigError(f"{where}: variants.{variant}: expected a mapping of fields")
    for key in over:
        if key not in VARIANT_FIELDS:
            raise ConfigError(f"{where}: variants.{variant}.{key}: a variant may set {', '.join(VARIANT_FIELDS)}")
    for key, value in over.items():
        if key in ("constants", "budget") and isinstance(value, Mapping):
            data[key] = {**(data.get(key) or {}), **value}
        else:
            data[key] = value
    data["name"] = f"{data.get('name') or Path(where).stem}-{variant}"
    return data


def load_space(path: str | Path, variant: str | None = None) -> Space:
    """Read and validate a search-space file (with one of its `variants:` applied); any problem is one `ConfigError`
    naming the file and the key."""
    path = Path(path)
    where = str(path)
    try:
        data = yaml.load(path.read_text(), Loader=_Loader)  # a SafeLoader subclass
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such search-space file") from None
    except _DuplicateKey as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where}: not valid YAML ({exc})") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping (profile, objective, search or grid, ...), "
                          f"got {type(data).__name__}")
    data = apply_variant(data, variant, where)
    single = isinstance(data.get("objective"), Mapping)  # one {metric, mode}, not a list: no [0] in messages
    try:
        spec = SpaceFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_message(exc, where, single)) from None
    return Checker(where, path).build(spec, single_objective=single)


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that parses the mapping at `loc` (to list what is allowed there)."""
    tp: Any = SpaceFile
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            fields = {(f.alias or n): f.annotation for n, f in tp.model_fields.items()}
            if part not in fields:
                return None
            tp = fields[part]
        else:
            args = get_args(tp)
            tp = args[-1] if args else None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    if get_origin(tp) is Union or type(tp).__name__ == "UnionType":
        args = [a for a in get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return tp


def _pydantic_message(exc: ValidationError, where: str, single_objective: bool) -> str:
    errors = exc.errors()
    first = errors[0]
    loc, kind = tuple(first["loc"]), first["type"]
    shown = loc[:1] + loc[2:] if single_objective and loc[:2] == ("objective", 0) else loc
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = [f.alias or n for n, f in model.model_fields.items()] if model else []
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        msg = f"unknown key '{loc[-1]}'{hint}; allowed here: {', '.join(allowed)}"
    elif kind == "missing":
        msg = "required key missing"
    else:
        text = first["msg"]
        msg = f"{text[:1].lower()}{text[1:]} (got {first.get('input')!r})"
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return f"{where}: {_path(shown) or '(top level)'}: {msg}{more}"
