"""What a validated search space runs (`Space`, made by `load_space`): its trials and their configs, the Optuna and
Tune objects (each parameter through `kinds.KINDS`), and what may not change when a sweep resumes.

- Grid expansion: `cartesian(grid)` (every combination, the first key slowest) and `one_factor_at_a_time(base, vary,
  base_values)` (the base point once, then each factor's values in file order with every other key at the base; a
  value equal to the base's own is the base point and is not repeated). `label(point, base)` names a point in tables
  (`base`, `align.prior=none`, `a=1, b=2`).
- `check_resumable(old, new)`: a resumed sweep's space must have the same `identity()` (name, description and the
  budget keys num_samples, max_concurrent, time_budget_s aside); the error lists each changed key.
Nothing here imports Optuna or Ray at module level. The `--dry-run` text and estimate: `mate.sweep.dryrun`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mate.config import Config, ConfigError, derive_seed, resolve

from .kinds import Param, fmt, optuna_distribution, suggest, tune_sampler

RESERVED = {
    "profile": "set it with the top-level `profile:`",
    "seed": "trial seeds come from `seeds:` (seed_mode)",
    "gen.epochs": "set it with `budget.max_epochs` (every trial's epoch count, ASHA's max_t)",
}  # keys a space sets through its own fields, never as config keys
# budget keys that may change when a sweep is resumed or extended
MUTABLE_BUDGET = ("num_samples", "max_concurrent", "time_budget_s", "max_failures")


def cartesian(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def one_factor_at_a_time(base: Mapping[str, Any], vary: Mapping[str, Sequence[Any]],
                         base_values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`base` is the ofat base as written (the overrides every point carries); `base_values` the resolved value of
    each varied key at the base (what "unchanged" means)."""
    points = [dict(base)]
    for name, values in vary.items():
        for value in values:
            if same(value, base_values[name]):
                continue
            points.append({**base, name: value})
    return points


def same(a: Any, b: Any) -> bool:
    """Equal and of one type: `1 == 1.0 == True` in Python, three different values in a space file."""
    return type(a) is type(b) and a == b


def label(point: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    """The keys where `point` differs from `base` as `k=v` words, or `base` when it does not differ."""
    base = base or {}
    diff = {k: v for k, v in point.items() if k not in base or not same(base[k], v)}
    return ", ".join(f"{k}={fmt(v)}" for k, v in diff.items()) or "base"


# -- the validated space -----------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Space:
    """A validated search-space file (from `load_space`)."""

    path: Path
    name: str
    description: str
    profile: str
    kind: str  # search | grid | ofat | points
    data_required: bool
    constants: dict[str, Any]
    params: dict[str, Param]  # search only: parents before the ones that depend on them
    points: list[tuple[str, dict[str, Any]]]  # grids only: (label, overrides)
    varied: tuple[str, ...]  # the keys the trials vary
    definition: Any  # the normalised search/grid/ofat/points section (part of the fingerprint)
    seeds: tuple[int, ...]
    objectives: tuple  # of schema.Objective
    budget: Any  # schema.Budget
    max_epochs: int
    rerun: Any = None  # schema.Rerun

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def is_search(self) -> bool:
        return self.kind == "search"

    @property
    def seed_mode(self) -> str:
        """`derived` (a search: one seed per trial from the base seed) or `replicates` (grids: every point x seeds)."""
        return "derived" if self.is_search else "replicates"

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def algorithm(self) -> str:
        """`tpe` (one objective), `nsga2` (several) or `grid` (grid, ofat, points through Tune's grid search)."""
        return ("nsga2" if self.multi_objective else "tpe") if self.is_search else "grid"

    @property
    def scheduler(self) -> str:
        """`asha` on generator epochs for a single-objective search; `fifo` for several objectives and for grids
        (an ablation's points all run to the end)."""
        return "asha" if self.is_search and not self.multi_objective else "fifo"

    @property
    def metrics(self) -> list[str]:
        return [o.metric for o in self.objectives]

    @property
    def modes(self) -> list[str]:
        return [o.mode for o in self.objectives]

    @property
    def base_seed(self) -> int:
        return self.seeds[0]

    @property
    def num_trials(self) -> int:
        return self.budget.num_samples if self.is_search else len(self.points) * len(self.seeds)

    @property
    def num_rerun_trials(self) -> int:
        """The replicate runs after a search: its best `rerun.top` configs once per replicate seed."""
        return self.rerun.top * len(self.rerun.seeds) if self.rerun else 0

    def trial_seed(self, number: int) -> int:
        """The seed of search trial `number` (Optuna's trial number): derived from the base seed."""
        return derive_seed(self.base_seed, f"trial{number}")

    def trials(self) -> list[dict[str, Any]]:
        """Every trial of a grid as flat overrides plus `seed`, the seeds outermost (constants are not repeated:
        `trial_config` adds them). A search has no fixed list: use `optuna_distributions` / `sample`."""
        if self.is_search:
            raise ConfigError(f"{self.where}: a search samples its trials; it has no fixed list (optuna_distributions)")
        return [{**point, "seed": seed} for seed in self.seeds for _, point in self.points]

    def labels(self) -> list[str]:
        """The label of each trial of `trials()`, in the same order."""
        return [label for _ in self.seeds for label, _ in self.points]

    def active(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`params` without the conditional parameters whose condition does not hold (grids: unchanged)."""
        if not self.is_search:
            return dict(params)
        out: dict[str, Any] = {}
        for name, p in self.params.items():
            if name in params and p.active(out):
                out[name] = params[name]
        return out

    def trial_config(self, params: Mapping[str, Any] | None = None, seed: int | None = None, *,
                     extra: Mapping[str, Any] | None = None) -> Config:
        """The resolved config of one trial: defaults < profile < constants < `extra` (e.g. data.dir from --data)
        < `params` (a point or sampled values; inactive conditionals dropped) < seed and gen.epochs."""
        params = dict(params or {})
        if "seed" in params:
            given = params.pop("seed")
            if seed is not None and seed != given:
                raise ConfigError(f"{self.where}: trial seed given twice ({given} and {seed})")
            seed = given
        strangers = [k for k in params if k not in self.varied]
        if strangers:
            raise ConfigError(f"{self.where}: {', '.join(strangers)}: not a parameter of this space (it varies "
                              f"{', '.join(self.varied)})")
        extra = dict(extra or {})
        for name in extra:
            if name in RESERVED or name in self.varied:
                why = RESERVED.get(name) or "it is a parameter of this space"
                raise ConfigError(f"{self.where}: override {name}: not allowed ({why})")
        cfg = self._resolve({**extra, **self.active(params)}, seed)
        if self.data_required and cfg["data.dir"] is None:
            raise ConfigError(f"{self.where}: data_required: this space runs on a real dataset; pass --data DIR")
        return cfg

    def _resolve(self, overrides: Mapping[str, Any], seed: int | None = None, what: str = "") -> Config:
        values = {**self.constants, **overrides, "seed": self.base_seed if seed is None else seed,
                  "gen.epochs": self.max_epochs}
        try:
            return resolve(values, profile=self.profile)
        except ConfigError as exc:
            raise ConfigError(f"{self.where}: {what}{exc}") from None

    def check_trials(self) -> None:
        """Resolve every grid trial, or the search's base with each parameter at each bound / choice."""
        if self.is_search:
            probes = [{n: v} for n, p in self.params.items() for v in (p.choices or (p.low, p.high))]
        else:
            probes = [point for _, point in self.points]
        for point in probes:
            self._resolve(point, what=f"trial {label(point)}: ")

    def values_of(self, name: str) -> list[Any]:
        """Every value `name` takes across the trials (what the prepare stage must build, e.g. each
        `segment.backend`); a range parameter has no finite set and raises ValueError."""
        if self.is_search and name in self.params:
            p = self.params[name]
            if p.kind != "choice":
                raise ValueError(f"{name} is a {p.kind} range, not a finite set of values")
            inactive = [self._resolve({})[name]] if p.when else []
            return list(dict.fromkeys([*p.choices, *inactive]))
        configs = [self._resolve(point) for _, point in (self.points or [("base", {})])]
        return list(dict.fromkeys(cfg[name] for cfg in configs))

    # -- Optuna / Tune objects (imported here only) --------------------------------------------------------------------
    def optuna_distributions(self) -> dict[str, Any]:
        self._need_search("optuna_distributions")
        return {name: optuna_distribution(p) for name, p in self.params.items()}

    def sample(self, trial: Any) -> dict[str, Any]:
        """Define-by-run for Optuna (and Ray's OptunaSearch `space=`): suggests the active parameters, parents first,
        and returns the constants Ray adds to the trial's config: its derived `seed`."""
        self._need_search("sample")
        chosen: dict[str, Any] = {}
        for name, p in self.params.items():
            if p.active(chosen):
                chosen[name] = suggest(trial, p)
        return {"seed": self.trial_seed(trial.number)}

    def optuna_sampler(self):
        """Seeded TPE for one objective, seeded NSGA-II for several."""
        import optuna

        self._need_search("optuna_sampler")
        n = self.budget.num_samples
        if self.multi_objective:
            return optuna.samplers.NSGAIISampler(seed=self.base_seed, population_size=max(4, min(50, n // 4)))
        return optuna.samplers.TPESampler(seed=self.base_seed, n_startup_trials=max(2, min(10, n // 2)))

    def tune_param_space(self) -> dict[str, Any]:
        """For Tune without Optuna: a search's distributions as `tune.*` samplers (conditionals are drawn always and
        dropped by `trial_config`), a grid as one `tune.grid_search` over `trials()` under the key `trial`."""
        from ray import tune

        if not self.is_search:
            return {"trial": tune.grid_search(self.trials())}
        return {name: tune_sampler(p) for name, p in self.params.items()}

    def _need_search(self, what: str) -> None:
        if not self.is_search:
            raise ConfigError(f"{self.where}: {what} is for searches; a {self.kind} has trials()")

    # -- resume --------------------------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """What may not change between a sweep and its resumption (JSON-safe: store it beside the sweep)."""
        budget = {k: v for k, v in self.budget.model_dump().items() if k not in MUTABLE_BUDGET}
        budget["max_epochs"] = self.max_epochs
        ident = {"profile": self.profile, "data_required": self.data_required,
                 "constants": self.constants, self.kind: self.definition, "seeds": list(self.seeds),
                 "objective": [o.model_dump() for o in self.objectives], "budget": budget,
                 "rerun": self.rerun.model_dump() if self.rerun else None}
        return json.loads(json.dumps(ident, sort_keys=True))

    def fingerprint(self) -> str:
        return _hash(self.identity())


def _hash(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _leaves(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, Mapping) and tree:
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def check_resumable(old: Space | Mapping[str, Any] | str, new: Space) -> None:
    """Refuse to resume a sweep whose space changed (budget.num_samples, max_concurrent and time_budget_s aside).

    `old` is the space the sweep started with, its `identity()` (stored as JSON) or only its `fingerprint()`."""
    if isinstance(old, str):
        if old == new.fingerprint():
            return
        raise ConfigError(f"{new.where}: cannot resume sweep '{new.name}': its space changed since it started "
                          f"(fingerprint {old} -> {new.fingerprint()}). {_RESUME_HINT}")
    before = old.identity() if isinstance(old, Space) else json.loads(json.dumps(dict(old), sort_keys=True))
    after = new.identity()
    if _hash(before) == _hash(after):
        return
    a, b = _leaves(before), _leaves(after)
    changes = []
    for key in list(dict.fromkeys([*a, *b])):
        if key not in b:
            changes.append(f"{key} removed (was {_short(a[key])})")
        elif key not in a:
            changes.append(f"{key} added ({_short(b[key])})")
        elif a[key] != b[key]:
            changes.append(f"{key}: {_short(a[key])} -> {_short(b[key])}")
    raise ConfigError(f"{new.where}: cannot resume sweep '{new.name}': its space changed since it started: "
                      f"{'; '.join(changes)}. {_RESUME_HINT}")


_RESUME_HINT = ("Only budget.num_samples, budget.max_concurrent and budget.time_budget_s may change when a sweep is "
                "resumed or extended; run the changed space as a new sweep (--name NEW)")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
