"""Search-space files (`search_spaces/*.yaml`): the schema, its validation, and the trials a file describes.

A file is validated whole before anything starts (DESIGN 5); every error is one `ConfigError` naming the file, the key
path inside it and what is allowed. The schema (every section but `profile`, `objective` and one of the four
`search`/`grid`/`ofat`/`points` is optional):

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

Rules. Every parameter is a registered config key (mate.config.KEYS) whose type fits its distribution (uniform and
loguniform need a float key, int an int key; bool and str keys take `choice`) and every value is checked with
`check_value`. `profile`, `seed` and `gen.epochs` are set through `profile:`, `seeds:` and `budget.max_epochs`, never as
keys; keys the prepare stage fixes for a whole sweep (`data.*` but `data.random_crop`, `encoder.*`, `evaluator.*`, the
measurement keys `eval.scorer|official_dir|repeats|samples|pairs|val_items`, how the LLM is reached) and
stage seeds may be constants but never vary (`fixed_reason` says why). A key is a constant or a parameter, not both.
`search` never mixes with a grid (DESIGN 5). Unknown keys anywhere, duplicate YAML keys and `1e-3` (YAML 1.1 text; write
`1.0e-3`) are errors.

Conditional parameters: `when: {parent: value or [values], ...}` on a search parameter samples it only when every
parent (a `choice` parameter of the same search) took one of those values; otherwise the key keeps its constant /
profile / default value. Conditions may chain; cycles are refused.

seed_mode. A search is `derived`: one base seed (`seeds` absent = [0], or a single entry) seeds the sampler, and trial
number n runs with `derive_seed(base, "trial<n>")`: one seed per trial, never replicates (TPE must not see the same
config twice as two points). Grids are `replicates`: every point runs once per seed in `seeds` (default [0]), seed
the outer loop, so a partial run already holds every point. Replicates of a search's best configs: `rerun`.

Objectives are `val/` + a figure reported after every generator epoch (`eval/*` and `probe/*` of DESIGN 4): test figures
never drive selection, and `val/align/*` rides on the first report only. One objective: TPE + ASHA on generator epochs;
several: NSGA-II (or a grid) with FIFO, never ASHA.

Resume: `fingerprint()` hashes everything except `name`, `description` and the budget keys a sweep's extension may
change (num_samples, max_concurrent, time_budget_s); `check_resumable(old, new)` names whatever else changed. The
trials, their configs, the Optuna/Tune objects and the dry-run live in `mate.sweep.grid` (re-exported here).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mate.config import KEYS, PROFILES, Config, ConfigError, check_value, flatten, resolve
from mate.sweep import grid as G
from mate.sweep.grid import RESERVED, Space, check_resumable, estimate, format_estimate, format_trials

__all__ = ["Budget", "ConfigError", "Objective", "Param", "Rerun", "Space", "check_resumable", "estimate",
           "fixed_reason", "format_estimate", "format_trials", "load_space"]

KINDS = ("search", "grid", "ofat", "points")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")

_SEEDS = "stage seeds derive from the trial's seed; replicate with `seeds:` instead"
_MEASURE = "it changes what the metrics measure, so trials would not be comparable"
_LLM = "it is how the LLM is reached, not what the trial does"
_FIXED_PREFIXES = {
    "data.": "the dataset is prepared once per sweep (the data is not a knob)",
    "encoder.": "the base language model is loaded once per sweep and the frozen evaluators read it",
    "evaluator.": "the frozen evaluators are trained once per sweep by the prepare stage",
}
_FIXED_KEYS = {"eval.scorer": _MEASURE, "eval.official_dir": _MEASURE, "eval.repeats": _MEASURE,
               "eval.samples": _MEASURE, "eval.pairs": _MEASURE, "eval.val_items": _MEASURE,
               "segment.base_url": _LLM, "segment.api_key_env": _LLM, "segment.concurrency": _LLM,
               "segment.max_retries": _LLM, "segment.timeout": _LLM}
_VARIABLE = {"data.random_crop"}  # a training knob despite its prefix


def fixed_reason(name: str) -> str | None:
    """Why `name` may be a constant but never vary within a sweep (None: it may vary)."""
    if name in _VARIABLE:
        return None
    if name.endswith((".seed", "_seed")):
        return _SEEDS
    if name in _FIXED_KEYS:
        return _FIXED_KEYS[name]
    return next((why for prefix, why in _FIXED_PREFIXES.items() if name.startswith(prefix)), None)


# figures reported with every generator epoch (DESIGN 4); `val/` + one of these may be an objective
_EVAL = ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "diversity")
_PROBES = ("word_pair_acc", "word_pair_acc_comp", "turn_acc", "direction_acc", "speed_acc", "action_acc", "limb_acc",
           "foot_skate", "jitter")
OBJECTIVE_METRICS = tuple([f"eval/{m}" for m in _EVAL] + [f"probe/{m}" for m in _PROBES])
_LOWER_IS_BETTER = ("eval/fid", "eval/mm_dist", "probe/foot_skate", "probe/jitter")


def _better(metric: str) -> str | None:
    if metric in _LOWER_IS_BETTER:
        return "min"
    return "max" if metric.startswith("eval/r_precision") or metric.endswith(("_acc", "_acc_comp")) else None


# -- the file's structure (pydantic); the meaning of the values is checked by _Checker below ---------------------------
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _ParamSpec(_Strict):
    uniform: list[Any] | None = None
    loguniform: list[Any] | None = None
    int_: list[Any] | None = Field(None, alias="int")
    choice: list[Any] | None = None
    step: int | None = Field(None, ge=1)
    log: bool = False
    when: dict[str, Any] | None = None


class _Ofat(_Strict):
    base: dict[str, Any] = Field(default_factory=dict)
    vary: dict[str, list[Any]]


class Objective(_Strict):
    metric: str
    mode: Literal["min", "max"]


class Budget(_Strict):
    num_samples: int | None = Field(None, ge=1)
    max_epochs: int | None = Field(None, ge=1)
    grace_period: int = Field(1, ge=1)
    cpus_per_trial: int = Field(1, ge=1)
    gpus_per_trial: float = Field(0.0, ge=0)
    max_concurrent: int = Field(1, ge=1)
    time_budget_s: float | None = Field(None, gt=0)
    max_failures: int = Field(2, ge=0)


class Rerun(_Strict):
    top: int = Field(ge=1)
    seeds: list[int] = Field(min_length=1)


class _File(_Strict):
    name: str | None = None
    description: str = ""
    profile: str
    data_required: bool = False
    constants: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, _ParamSpec] | None = None
    grid: dict[str, list[Any]] | None = None
    ofat: _Ofat | None = None
    points: list[dict[str, Any]] | None = None
    seeds: list[int] | None = None
    objective: list[Objective]
    budget: Budget = Field(default_factory=Budget)
    rerun: Rerun | None = None

    @field_validator("objective", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, Mapping) else value


@dataclass(frozen=True)
class Param:
    """One search parameter, normalised (`kind` is uniform, loguniform, int or choice)."""

    name: str
    kind: str
    low: Any = None
    high: Any = None
    step: int | None = None
    log: bool = False
    choices: tuple = ()
    when: tuple[tuple[str, tuple], ...] = ()

    def active(self, chosen: Mapping[str, Any]) -> bool:
        return all(parent in chosen and chosen[parent] in allowed for parent, allowed in self.when)

    def describe(self) -> str:
        if self.kind == "choice":
            text = "choice(" + ", ".join(G.fmt(c) for c in self.choices) + ")"
        else:
            extra = (f", step {self.step}" if self.step else "") + (", log" if self.log and self.kind == "int" else "")
            text = f"{self.kind}({G.fmt(self.low)}, {G.fmt(self.high)}{extra})"
        return text

    def describe_when(self) -> str:
        return " and ".join(f"{p} in ({', '.join(G.fmt(v) for v in vals)})" for p, vals in self.when)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, step=self.step, log=self.log)
        if self.when:
            out["when"] = {p: list(v) for p, v in self.when}
        return out


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


def load_space(path: str | Path) -> Space:
    """Read and validate a search-space file; any problem is one `ConfigError` naming the file and the key."""
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
    single = isinstance(data.get("objective"), Mapping)  # one {metric, mode}, not a list: no [0] in messages
    try:
        spec = _File.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_pydantic_message(exc, where, single)) from None
    return _Checker(where, path).build(spec, single_objective=single)


def _path(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that parses the mapping at `loc` (to list what is allowed there)."""
    tp: Any = _File
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


# -- meaning -----------------------------------------------------------------------------------------------------------
class _Checker:
    def __init__(self, where: str, path: Path):
        self.where, self.path = where, path

    def fail(self, path: str, msg: str) -> ConfigError:
        return ConfigError(f"{self.where}: {path}: {msg}")

    def key(self, path: str, name: str, *, varied: bool) -> None:
        if name not in KEYS:
            group = sorted(k for k in KEYS if k.startswith(name + "."))
            if group:
                raise self.fail(path, f"'{name}' is a group of keys, not a key: name one of {', '.join(group[:6])}"
                                      f"{', ...' if len(group) > 6 else ''} (parameters are flat dotted keys)")
            try:
                check_value(name, None)
            except ConfigError as exc:
                raise self.fail(path, str(exc)) from None
        if name in RESERVED:
            raise self.fail(path, f"'{name}' is not a config key here: {RESERVED[name]}")
        why = fixed_reason(name) if varied else None
        if why:
            raise self.fail(path, f"'{name}' cannot vary within a sweep ({why}); it may only be a constant")

    def value(self, path: str, name: str, value: Any) -> Any:
        try:
            return check_value(name, value)
        except ConfigError as exc:
            hint = ""
            if KEYS[name].type is float and isinstance(value, str) and _is_number(value):
                hint = f" (YAML reads {value} as text: write it with a dot, e.g. {_dotted(value)})"
            raise self.fail(path, f"{exc}{hint}") from None

    def mapping(self, path: str, tree: Mapping[str, Any], *, varied: bool) -> dict[str, Any]:
        out = {}
        for name, value in flatten(tree).items():
            self.key(f"{path}.{name}", name, varied=varied)
            out[name] = self.value(f"{path}.{name}", name, value)
        return out

    def values(self, path: str, name: str, values: list) -> tuple:
        if not values:
            raise self.fail(path, "empty list: give at least one value")
        out = tuple(self.value(f"{path}[{i}]", name, v) for i, v in enumerate(values))
        for i, v in enumerate(out):
            if any(G._same(v, w) for w in out[:i]):
                raise self.fail(f"{path}[{i}]", f"{v!r} is listed twice")
        return out

    def param(self, name: str, spec: _ParamSpec) -> Param:
        path = f"search.{name}"
        self.key(path, name, varied=True)
        key = KEYS[name]
        given = [d for d in DISTRIBUTIONS if getattr(spec, "int_" if d == "int" else d) is not None]
        if len(given) != 1:
            got = f" (got {', '.join(given)})" if given else ""
            raise self.fail(path, f"give exactly one distribution: uniform, loguniform, int or choice{got}")
        kind = given[0]
        raw = getattr(spec, "int_" if kind == "int" else kind)
        at = f"{path}.{kind}"
        if kind != "int" and (spec.step is not None or spec.log):
            raise self.fail(path, f"step and log belong to int parameters, not {kind}")
        if kind == "choice":
            return Param(name, kind, choices=self.values(at, name, raw))
        wanted = int if kind == "int" else float
        if key.type is not wanted:
            use = {int: "int: [low, high]", float: "uniform or loguniform: [low, high]"}.get(key.type, "choice: [...]")
            article = "an" if key.type is int else "a"
            raise self.fail(at, f"'{name}' is {article} {key.type.__name__} key, {kind} needs a {wanted.__name__} "
                                f"key; use {use}")
        if len(raw) != 2:
            raise self.fail(at, f"expected [low, high], got {raw!r}")
        low, high = (self.value(f"{at}[{i}]", name, v) for i, v in enumerate(raw))
        if low is None or high is None:
            raise self.fail(at, "the bounds of a range cannot be null")
        if not low < high:
            raise self.fail(at, f"empty range: low {low!r} must be below high {high!r}")
        log = kind == "loguniform" or spec.log
        if log and low <= 0:
            raise self.fail(at, f"a log scale needs low > 0, got {low!r}")
        if spec.step is not None and spec.log:
            raise self.fail(path, "an int parameter takes step or log, not both")
        return Param(name, kind, low, high, spec.step, log)

    def conditions(self, search: Mapping[str, _ParamSpec], params: dict[str, Param]) -> dict[str, Param]:
        choices = [n for n, p in params.items() if p.kind == "choice"]
        for name, spec in search.items():
            if spec.when is None:
                continue
            at = f"search.{name}.when"
            if not spec.when:
                raise self.fail(at, "empty: name the choice parameter(s) and value(s) this parameter depends on")
            when = []
            for parent, allowed in spec.when.items():
                if parent == name or parent not in params or params[parent].kind != "choice":
                    others = ", ".join(c for c in choices if c != name) or "none here"
                    raise self.fail(f"{at}.{parent}", f"'{parent}' is not another choice parameter of this search, "
                                                      f"which a condition must name ({others})")
                vals = self.values(f"{at}.{parent}", parent, allowed if isinstance(allowed, list) else [allowed])
                for v in vals:
                    if not any(G._same(v, c) for c in params[parent].choices):
                        raise self.fail(f"{at}.{parent}", f"{v!r} is not one of {parent}'s choices "
                                                          f"({', '.join(map(G.fmt, params[parent].choices))})")
                when.append((parent, vals))
            params[name] = replace(params[name], when=tuple(when))
        order: list[str] = []

        def visit(name: str, stack: tuple) -> None:
            if name in stack:
                cycle = " -> ".join((*stack[stack.index(name):], name))
                raise self.fail(f"search.{name}.when", f"conditions form a cycle: {cycle}")
            if name in order:
                return
            for parent, _ in params[name].when:
                visit(parent, (*stack, name))
            order.append(name)

        for name in params:
            visit(name, ())
        return {n: params[n] for n in order}

    def build(self, spec: _File, *, single_objective: bool) -> Space:
        name = spec.name or self.path.stem
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise self.fail("name", f"{name!r}: letters, digits, '_', '.' and '-' only (it names folders)")
        if spec.profile not in PROFILES:
            raise self.fail("profile", f"must be one of {', '.join(PROFILES)}; got {spec.profile!r}")
        given = [k for k in KINDS if getattr(spec, k) is not None]
        if not given:
            raise self.fail("(top level)", "nothing to run: give one of search (TPE), grid, ofat or points")
        if len(given) > 1:
            why = " (TPE and grids never mix, DESIGN 5)" if "search" in given else ""
            raise self.fail(given[1], f"{given[0]} and {given[1]} cannot be mixed{why}: one file, one of "
                                      f"search, grid, ofat, points")
        kind = given[0]
        constants = self.mapping("constants", spec.constants, varied=False)
        params: dict[str, Param] = {}
        points: list[tuple[str, dict[str, Any]]] = []
        definition: Any
        base_cfg = self.resolve(constants, spec.profile, "constants")
        if kind == "search":
            if not spec.search:
                raise self.fail("search", "empty: give at least one parameter")
            params = self.conditions(spec.search, {n: self.param(n, p) for n, p in spec.search.items()})
            varied, definition = list(params), {n: p.to_json() for n, p in params.items()}
        elif kind == "grid":
            if not spec.grid:
                raise self.fail("grid", "empty: give at least one key and its values")
            grid = {}
            for n, vals in spec.grid.items():
                self.key(f"grid.{n}", n, varied=True)
                grid[n] = self.values(f"grid.{n}", n, vals)
            points = [(G.label(p), p) for p in G.cartesian(grid)]
            varied, definition = list(grid), {n: list(v) for n, v in grid.items()}
        elif kind == "ofat":
            base = self.mapping("ofat.base", spec.ofat.base, varied=False)
            self.overlap(constants, base, "ofat.base")
            if not spec.ofat.vary:
                raise self.fail("ofat.vary", "empty: name at least one factor and its values")
            vary, at_base = {}, self.resolve({**constants, **base}, spec.profile, "ofat.base")
            for n, vals in spec.ofat.vary.items():
                self.key(f"ofat.vary.{n}", n, varied=True)
                vary[n] = self.values(f"ofat.vary.{n}", n, vals)
                if all(G._same(v, at_base[n]) for v in vary[n]):
                    raise self.fail(f"ofat.vary.{n}", f"every value equals the base's ({G.fmt(at_base[n])}): "
                                                      f"nothing varies")
            points = [(G.label(p, base), p) for p in G.one_factor_at_a_time(base, vary, at_base)]
            varied = list(vary)
            definition = {"base": base, "vary": {n: list(v) for n, v in vary.items()}}
        else:
            if not spec.points:
                raise self.fail("points", "empty list: give at least one point ({} is the constants alone)")
            flat = [self.mapping(f"points[{i}]", p, varied=True) for i, p in enumerate(spec.points)]
            for i, p in enumerate(flat):
                if p in flat[:i]:
                    raise self.fail(f"points[{i}]", f"the same point as points[{flat.index(p)}]")
            points = [(G.label(p), p) for p in flat]
            varied = list(dict.fromkeys(k for p in flat for k in p))
            definition = flat
        self.overlap(constants, dict.fromkeys(varied), kind)
        seeds = self.seeds(spec, kind)
        objectives = self.objectives(spec.objective, single_objective)
        max_epochs = self.budget(spec, kind, base_cfg["gen.epochs"], len(points) * len(seeds))
        space = Space(path=self.path, name=name, description=spec.description, profile=spec.profile, kind=kind,
                      data_required=spec.data_required, constants=constants, params=params, points=points,
                      varied=tuple(varied), definition=definition, seeds=seeds, objectives=objectives,
                      budget=spec.budget, max_epochs=max_epochs, rerun=spec.rerun)
        space._check_trials()
        return space

    def resolve(self, values: Mapping[str, Any], profile: str, path: str) -> Config:
        try:
            return resolve(values, profile=profile)
        except ConfigError as exc:
            raise self.fail(path, str(exc)) from None

    def overlap(self, constants: Mapping[str, Any], other: Mapping[str, Any], section: str) -> None:
        both = [k for k in other if k in constants]
        if both:
            raise self.fail(f"constants.{both[0]}", f"'{both[0]}' is also given in {section}: set it in one place")

    def seeds(self, spec: _File, kind: str) -> tuple[int, ...]:
        seeds = spec.seeds
        if seeds is not None and not seeds:
            raise self.fail("seeds", "empty list: give at least one seed, or leave seeds out for [0]")
        if kind == "search" and seeds is not None and len(seeds) > 1:
            raise self.fail("seeds", f"a search gives every trial its own seed derived from one base seed (seed_mode "
                                     f"'derived'), so list at most one (e.g. seeds: [{seeds[0]}]); replicate seeds "
                                     f"belong to grids and ablations, and to rerun.seeds for the best configs")
        seeds = seeds or [0]
        for i, s in enumerate(seeds):
            if s < 0:
                raise self.fail(f"seeds[{i}]", f"seeds are non-negative integers, got {s}")
            if s in seeds[:i]:
                raise self.fail(f"seeds[{i}]", f"seed {s} is listed twice")
        return tuple(seeds)

    def objectives(self, objectives: list[Objective], single: bool) -> tuple[Objective, ...]:
        if not objectives:
            raise self.fail("objective", "give at least one {metric, mode}")
        allowed = [f"val/{m}" for m in OBJECTIVE_METRICS]
        for i, obj in enumerate(objectives):
            at = "objective" if single else f"objective[{i}]"
            metric = obj.metric
            if not metric.startswith("val/"):
                fix = f": use 'val/{metric}'" if metric in OBJECTIVE_METRICS else ""
                raise self.fail(f"{at}.metric", f"'{metric}' is not a val/* metric; test figures never drive "
                                                f"selection (DESIGN 4){fix}")
            if metric[4:] not in OBJECTIVE_METRICS:
                if metric.startswith(("val/align/", "val/segment/")):
                    why = "is reported once, with the first generator epoch, but an objective must be in every report"
                else:
                    close = difflib.get_close_matches(metric, allowed, n=1)
                    why = "is not a metric the trials report" + (f" (did you mean '{close[0]}'?)" if close else "")
                raise self.fail(f"{at}.metric", f"'{metric}' {why}; objectives: {', '.join(allowed)}")
            better = _better(metric[4:])
            if better and obj.mode != better:
                raise self.fail(f"{at}.mode", f"mode {obj.mode} would select the worst trials: {better} is better "
                                              f"for {metric}")
            if metric in [o.metric for o in objectives[:i]]:
                raise self.fail(f"{at}.metric", f"'{metric}' is listed twice")
        return tuple(objectives)

    def budget(self, spec: _File, kind: str, profile_epochs: int, grid_trials: int) -> int:
        b = spec.budget
        if kind == "search" and b.num_samples is None:
            raise self.fail("budget.num_samples", "a search needs the number of trials to sample (>= 1)")
        if kind != "search" and b.num_samples is not None:
            raise self.fail("budget.num_samples", f"a {kind} runs each point once per seed ({grid_trials} "
                                                  f"trial{'s' if grid_trials != 1 else ''} here); num_samples belongs "
                                                  f"to searches")
        max_epochs = b.max_epochs or profile_epochs
        if b.grace_period > max_epochs:
            raise self.fail("budget.grace_period", f"{b.grace_period} is beyond max_epochs ({max_epochs})")
        if b.gpus_per_trial > 1 and not float(b.gpus_per_trial).is_integer():
            raise self.fail("budget.gpus_per_trial", f"fractions share one GPU: give at most 1 or a whole number, "
                                                     f"got {b.gpus_per_trial}")
        if spec.rerun is not None:
            if kind != "search":
                raise self.fail("rerun", f"a {kind} already runs its points over `seeds`; rerun belongs to searches")
            if spec.rerun.top > b.num_samples:
                raise self.fail("rerun.top", f"{spec.rerun.top} is more than the {b.num_samples} trials sampled")
            for i, s in enumerate(spec.rerun.seeds):
                if s < 0 or s in spec.rerun.seeds[:i]:
                    raise self.fail(f"rerun.seeds[{i}]", f"seeds are distinct non-negative integers, got {s}")
        return max_epochs


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _dotted(text: str) -> str:
    mant, _, exp = text.lower().partition("e")
    return f"{mant if '.' in mant else mant + '.0'}e{exp}" if exp else text
