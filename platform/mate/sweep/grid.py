"""Grid expansion and the `--dry-run` text of a search space: pure functions on already-validated values.

- `cartesian(grid)`: every combination, the first key varying slowest (file order).
- `one_factor_at_a_time(base, vary, base_values)`: the base point once, then each factor's values in file order with
  every other key at the base; a value equal to the base's own is the base point and is not repeated.
- `label(point, base)`: how a point reads in tables (`base`, `align.prior=none`, `a=1, b=2`).
- `table(header, rows)`: a plain fixed-width text table.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any


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
            if _same(value, base_values[name]):
                continue
            points.append({**base, name: value})
    return points


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def label(point: Mapping[str, Any], base: Mapping[str, Any] | None = None) -> str:
    """The keys where `point` differs from `base` as `k=v` words, or `base` when it does not differ."""
    base = base or {}
    diff = {k: v for k, v in point.items() if k not in base or not _same(base[k], v)}
    return ", ".join(f"{k}={fmt(v)}" for k, v in diff.items()) or "base"


def fmt(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [list(map(str, header))] + [[fmt(c) if not isinstance(c, str) else c for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
