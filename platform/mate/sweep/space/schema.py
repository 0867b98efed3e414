"""The structure of a search-space file (pydantic: section names, types, simple ranges). What the values mean
(registered keys, conditions, seeds, objectives, budgets) is `checks`'s job; the file format is documented in the
package's docstring (`mate.sweep.space`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .kinds import KINDS as PARAM_KINDS

SPACE_KINDS = ("search", "grid", "ofat", "points")  # the four ways a file lists its trials
DISTRIBUTIONS = tuple(PARAM_KINDS)


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
