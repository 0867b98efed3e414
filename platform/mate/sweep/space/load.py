"""Reading a search-space file: safe YAML that refuses duplicate keys, one of its `variants:` applied, the structure
parsed (`schema`) and checked (`checks`); a pydantic error becomes one line naming the file and the key path."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from mate.config import ConfigError

from .checks import Checker
from .model import Space
from .schema import SPACE_KINDS, SpaceFile


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


VARIANT_FIELDS = ("description", "profile", "data_required", "constants", "budget", "seeds", "objective",
                  *SPACE_KINDS)


def apply_variant(data: Mapping, variant: str | None, where: str) -> dict:
    """The file with one of its `variants:` applied: `constants` and `budget` merged over the file's own, the other
    fields replaced, the name suffixed (`<name>-<variant>`, a sweep of its own). A variant that lists its own trials
    (`search`, `grid`, `ofat` or `points`) replaces the file's design whole: a GPU variant may run the full grid that
    2 cores cannot afford. Without a variant: the file as it is, less its `variants:` section."""
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
    if any(key in SPACE_KINDS for key in over):
        for key in SPACE_KINDS:
            data.pop(key, None)
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
