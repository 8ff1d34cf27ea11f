"""Scenario files: TOML tables that set the parameters of one run.

A scenario file has one table per parameter group (``[market]``, ``[demand]``,
``[providers]`` with ``[[providers.templates]]``, ``[stakers]``, ``[design]``,
``[supply]``, ``[spiral]``, ``[simulation]``) and optional top-level ``name`` and
``description``. Keys left out keep their defaults; unknown keys and values out of range
are refused with the dotted key and the value, e.g. ``scenario 'bear.toml':
market.volatility has value -0.2; must be >= 0``. Overrides (dotted keys to values, as a
sweep varies them) go through the same checks.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpunet.sim.errors import SimError
from gpunet.sim.params import ParamError, Params, check_params

TOP_LEVEL_TEXT = ("name", "description")


class ScenarioError(SimError):
    """A scenario file or override that cannot be turned into parameters."""


@dataclass(frozen=True)
class Scenario:
    """A named set of parameters."""

    name: str
    params: Params
    description: str = ""

    def with_overrides(self, overrides: Mapping[str, object]) -> Scenario:
        """This scenario with dotted keys (``"market.drift"``) set to new values."""
        params = apply_overrides(self.params, overrides, f"scenario {self.name!r}")
        return dataclasses.replace(self, params=params)


def load_scenario(path: str | Path) -> Scenario:
    """Read a scenario TOML file; raise ``ScenarioError`` naming the file, key and value."""
    path = Path(path)
    context = f"scenario {path.name!r}"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ScenarioError(f"{context}: cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{context}: not valid TOML: {error}") from None
    return scenario_from_mapping(data, default_name=path.stem, context=context)


def scenario_from_mapping(
    data: Mapping[str, Any], default_name: str = "scenario", context: str = "scenario"
) -> Scenario:
    """Build a scenario from an already parsed mapping (a TOML document's tables)."""
    tables = dict(data)
    text = {key: tables.pop(key) for key in TOP_LEVEL_TEXT if key in tables}
    for key, value in text.items():
        if not isinstance(value, str):
            raise ScenarioError(f"{context}: {key} has value {value!r}; must be a string")
    params = params_from_mapping(tables, context)
    name = text.get("name", default_name)
    return Scenario(name, params, text.get("description", ""))


def params_from_mapping(data: Mapping[str, Any], context: str = "parameters") -> Params:
    """Parameters from nested tables, validated; errors are prefixed with ``context``."""
    try:
        return check_params(_build(Params, data, ""))
    except ParamError as error:
        raise ScenarioError(f"{context}: {error}") from None


def apply_overrides(
    params: Params, overrides: Mapping[str, object], context: str = "overrides"
) -> Params:
    """``params`` with each dotted key set to its value, checked like a scenario file."""
    tree: dict[str, Any] = _as_lists(dataclasses.asdict(params))
    for key, value in overrides.items():
        try:
            _set_dotted(tree, key, value)
        except ParamError as error:
            raise ScenarioError(f"{context}: {error}") from None
    return params_from_mapping(tree, context)


def _set_dotted(tree: dict[str, Any], key: str, value: object) -> None:
    node: Any = tree
    parts = key.split(".")
    for depth, part in enumerate(parts):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            index: int | str = int(part)
        elif isinstance(node, dict) and part in node:
            index = part
        else:
            raise ParamError(key, value, "unknown key")
        if depth == len(parts) - 1:
            node[index] = value
        else:
            node = node[index]


def _as_lists(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _as_lists(value) for key, value in node.items()}
    if isinstance(node, list | tuple):
        return [_as_lists(item) for item in node]
    return node


def _build(cls: type[Any], data: object, prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ParamError(prefix.rstrip(".") or "scenario", data, "must be a table")
    hints = typing.get_type_hints(cls)
    known = [spec.name for spec in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise ParamError(f"{prefix}{key}", value, f"unknown key; known: {', '.join(known)}")
        kwargs[key] = _convert(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _convert(hint: Any, value: object, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, key + ".")
    if typing.get_origin(hint) is tuple:
        item_type = typing.get_args(hint)[0]
        if not isinstance(value, list | tuple):
            raise ParamError(key, value, "must be an array of tables")
        return tuple(_convert(item_type, item, f"{key}.{i}") for i, item in enumerate(value))
    return _scalar(hint, value, key)


def _scalar(hint: Any, value: object, key: str) -> Any:
    if hint is bool:
        if not isinstance(value, bool):
            raise ParamError(key, value, "must be true or false")
        return value
    if isinstance(value, bool):
        raise ParamError(key, value, f"must be a {hint.__name__}, not true/false")
    if hint is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise ParamError(key, value, "must be a whole number")
        return value
    if hint is float:
        if not isinstance(value, int | float):
            raise ParamError(key, value, "must be a number")
        return float(value)
    if not isinstance(value, hint):
        raise ParamError(key, value, f"must be a {hint.__name__}")
    return value
