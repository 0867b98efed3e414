"""The structure of a search-space file (pydantic: section names, types, simple ranges) and the normalised search
parameter. What the values mean (registered keys, conditions, seeds, objectives, budgets) is `mate.sweep.space_check`'s
job; the file format itself is documented in `mate.sweep.space`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mate.sweep import grid as G

KINDS = ("search", "grid", "ofat", "points")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ParamSpec(_Strict):
    uniform: list[Any] | None = None
    loguniform: list[Any] | None = None
    int_: list[Any] | None = Field(None, alias="int")
    choice: list[Any] | None = None
    step: int | None = Field(None, ge=1)
    log: bool = False
    when: dict[str, Any] | None = None


class OfatSpec(_Strict):
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


class SpaceFile(_Strict):
    name: str | None = None
    description: str = ""
    profile: str
    data_required: bool = False
    constants: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, ParamSpec] | None = None
    grid: dict[str, list[Any]] | None = None
    ofat: OfatSpec | None = None
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
