"""What a search-space file's values mean, checked after its structure (`schema`): registered keys of the right type
and value, which keys may vary, conditional parameters, seeds, objectives and the budget. Every problem is one
`ConfigError` naming the file, the key path inside it and what is allowed (the rules: `mate.sweep.space`'s docstring).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mate.config import KEYS, PROFILES, TRIAL_SCORER, Config, ConfigError, check_value, flatten, resolve
from .kinds import KINDS, Param, fmt
from .model import RESERVED, Space, cartesian, label, one_factor_at_a_time, same
from .schema import DISTRIBUTIONS, SPACE_KINDS, Objective, ParamSpec, SpaceFile

_SEEDS = "stage seeds derive from the trial's seed; replicate with `seeds:` instead"
_MEASURE = "it changes what the metrics measure, so trials would not be comparable"
_LLM = "it is how the LLM is reached, not what the trial does"
_FIXED_PREFIXES = {
    "data.": "the dataset is prepared once per sweep (the data is not a knob)",
    "encoder.": "the base language model is loaded once per sweep and the frozen evaluators read it",
    "evaluator.": "the frozen evaluators are trained once per sweep by the prepare stage",
    "gen.vq_": "the motion tokenizer is trained once per sweep by the prepare stage and shared by every trial",
    "tokenizer.": "the prepare stage pins the motion tokenizer",
}
_FIXED_KEYS = {"eval.scorer": _MEASURE, "eval.official_dir": _MEASURE, "eval.repeats": _MEASURE,
               "eval.samples": _MEASURE, "eval.pairs": _MEASURE, "eval.val_items": _MEASURE,
               "eval.regenerate": _MEASURE, "eval.mm_texts": _MEASURE, "eval.mm_samples": _MEASURE,
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


# figures reported with every generator epoch (docs/architecture.md §7); `val/` + one of these may be an objective
_EVAL = ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "diversity")
_PROBES = ("word_pair_acc", "word_pair_acc_comp", "turn_acc", "direction_acc", "speed_acc", "action_acc", "limb_acc",
           "foot_skate", "jitter", "pair_acc",
           *(f"pair_acc_{a}" for a in ("turn", "direction", "speed", "limb", "height")))
OBJECTIVE_METRICS = tuple([f"eval/{m}" for m in _EVAL] + [f"probe/{m}" for m in _PROBES])
_LOWER_IS_BETTER = ("eval/fid", "eval/mm_dist", "probe/foot_skate", "probe/jitter")


def _better(metric: str) -> str | None:
    if metric in _LOWER_IS_BETTER:
        return "min"
    return "max" if metric.startswith("eval/r_precision") or metric.endswith(("_acc", "_acc_comp")) else None


class Checker:
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
            if name == "eval.scorer" and out[name] != "ours":
                raise self.fail(f"{path}.{name}", TRIAL_SCORER)
        return out

    def values(self, path: str, name: str, values: list) -> tuple:
        if not values:
            raise self.fail(path, "empty list: give at least one value")
        out = tuple(self.value(f"{path}[{i}]", name, v) for i, v in enumerate(values))
        for i, v in enumerate(out):
            if any(same(v, w) for w in out[:i]):
                raise self.fail(f"{path}[{i}]", f"{v!r} is listed twice")
        return out

    def param(self, name: str, spec: ParamSpec) -> Param:
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
        wanted = KINDS[kind].value_type
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
        if spec.step and (high - low) % spec.step:
            top = low + (high - low) // spec.step * spec.step
            raise self.fail(at, f"[{low}, {high}] is not a whole number of steps of {spec.step} (Optuna would stop at "
                                f"{top}); write [{low}, {top}] or [{low}, {top + spec.step}]")
        return Param(name, kind, low, high, spec.step, log)

    def conditions(self, search: Mapping[str, ParamSpec], params: dict[str, Param]) -> dict[str, Param]:
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
                    if not any(same(v, c) for c in params[parent].choices):
                        raise self.fail(f"{at}.{parent}", f"{v!r} is not one of {parent}'s choices "
                                                          f"({', '.join(map(fmt, params[parent].choices))})")
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

    def build(self, spec: SpaceFile, *, single_objective: bool) -> Space:
        name = spec.name or self.path.stem
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise self.fail("name", f"{name!r}: letters, digits, '_', '.' and '-' only (it names folders)")
        if spec.profile not in PROFILES:
            raise self.fail("profile", f"must be one of {', '.join(PROFILES)}; got {spec.profile!r}")
        given = [k for k in SPACE_KINDS if getattr(spec, k) is not None]
        if not given:
            raise self.fail("(top level)", "nothing to run: give one of search (TPE), grid, ofat or points")
        if len(given) > 1:
            why = " (TPE and grids never mix, docs/architecture.md §8)" if "search" in given else ""
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
            points = [(label(p), p) for p in cartesian(grid)]
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
                if all(same(v, at_base[n]) for v in vary[n]):
                    raise self.fail(f"ofat.vary.{n}", f"every value equals the base's ({fmt(at_base[n])}): "
                                                      f"nothing varies")
            points = [(label(p, base), p) for p in one_factor_at_a_time(base, vary, at_base)]
            varied = list(vary)
            definition = {"base": base, "vary": {n: list(v) for n, v in vary.items()}}
        else:
            if not spec.points:
                raise self.fail("points", "empty list: give at least one point ({} is the constants alone)")
            flat = [self.mapping(f"points[{i}]", p, varied=True) for i, p in enumerate(spec.points)]
            for i, p in enumerate(flat):
                if p in flat[:i]:
                    raise self.fail(f"points[{i}]", f"the same point as points[{flat.index(p)}]")
            points = [(label(p), p) for p in flat]
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
        space.check_trials()
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

    def seeds(self, spec: SpaceFile, kind: str) -> tuple[int, ...]:
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
                                                f"selection (docs/architecture.md §7){fix}")
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

    def budget(self, spec: SpaceFile, kind: str, profile_epochs: int, grid_trials: int) -> int:
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
