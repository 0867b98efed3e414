"""A search parameter (`Param`) and the one table (`KINDS`) from its kind to the three forms the platform needs: an
Optuna distribution (the study's record), a define-by-run suggestion (what TPE samples through Ray's OptunaSearch)
and a Tune sampler (a search run by Tune alone). A new kind is one row here; nothing else switches on the kind.

Optuna and Ray are imported inside the converters only, so loading a space file never starts either.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def fmt(value: Any) -> str:
    """A value as a space file writes it (`null`, `true`, `0.5`), for labels and tables."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class Param:
    """One search parameter, normalised (`kind` is a key of `KINDS`; `log` is true for loguniform)."""

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
            return "choice(" + ", ".join(fmt(c) for c in self.choices) + ")"
        extra = (f", step {self.step}" if self.step else "") + (", log" if self.log and self.kind == "int" else "")
        return f"{self.kind}({fmt(self.low)}, {fmt(self.high)}{extra})"

    def describe_when(self) -> str:
        return " and ".join(f"{p} in ({', '.join(fmt(v) for v in vals)})" for p, vals in self.when)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.kind == "choice":
            out["choices"] = list(self.choices)
        else:
            out.update(low=self.low, high=self.high, step=self.step, log=self.log)
        if self.when:
            out["when"] = {p: list(v) for p, v in self.when}
        return out


@dataclass(frozen=True)
class Kind:
    value_type: type | None  # the config key type a range needs (None: any key, the values are listed)
    optuna: Callable[[Param], Any]  # -> optuna.distributions.BaseDistribution
    suggest: Callable[[Any, Param], Any]  # (optuna.Trial, param) -> the sampled value
    tune: Callable[[Param], Any]  # -> a ray.tune sampler


def _float_distribution(p: Param):
    from optuna.distributions import FloatDistribution

    return FloatDistribution(p.low, p.high, log=p.log)


def _int_distribution(p: Param):
    from optuna.distributions import IntDistribution

    return IntDistribution(p.low, p.high, log=p.log, step=p.step or 1)


def _choice_distribution(p: Param):
    from optuna.distributions import CategoricalDistribution

    return CategoricalDistribution(list(p.choices))


def _float_tune(p: Param):
    from ray import tune

    return (tune.loguniform if p.log else tune.uniform)(p.low, p.high)


def _int_tune(p: Param):
    from ray import tune

    # Tune's randint excludes its upper bound (Optuna's and the file's include it), and its qrandint rounds to
    # multiples of q where Optuna steps from low ({1, 3, 5} for low 1, step 2): a step is the explicit grid
    if p.log:
        return tune.lograndint(p.low, p.high + 1)
    return tune.choice(list(range(p.low, p.high + 1, p.step))) if p.step else tune.randint(p.low, p.high + 1)


def _choice_tune(p: Param):
    from ray import tune

    return tune.choice(list(p.choices))


_FLOAT = Kind(float, _float_distribution, lambda t, p: t.suggest_float(p.name, p.low, p.high, log=p.log), _float_tune)
KINDS: dict[str, Kind] = {
    "uniform": _FLOAT,
    "loguniform": _FLOAT,
    "int": Kind(int, _int_distribution,
                lambda t, p: t.suggest_int(p.name, p.low, p.high, step=p.step or 1, log=p.log), _int_tune),
    "choice": Kind(None, _choice_distribution, lambda t, p: t.suggest_categorical(p.name, list(p.choices)),
                   _choice_tune),
}


def optuna_distribution(p: Param):
    return KINDS[p.kind].optuna(p)


def suggest(trial: Any, p: Param) -> Any:
    return KINDS[p.kind].suggest(trial, p)


def tune_sampler(p: Param):
    return KINDS[p.kind].tune(p)
