"""The offer filter language, in the spirit of Vast.ai's search.

A filter is a list of ``field op value`` terms joined by spaces, all of which must hold::

    gpu=H100 count>=2 price<2.5 region=eu
    gpu=H100,A100-80GB vram>=40 state=idle

Fields, their units and operators:

=========  ==============================  ==================
field      meaning                         operators
=========  ==============================  ==================
gpu        catalogue model (comma = any)   ``=`` ``!=``
count      GPUs on the node                all
vram       GiB per GPU, as named (80 = H100)  all
price      USD per GPU-hour                all
region     region or its subregions        ``=`` ``!=``
tflops     FP16 TFLOPS of the whole node   all
cpu        CPU cores                       all
ram        memory, GiB                     all
disk       free disk, GiB                  all
state      idle, busy or offline           ``=`` ``!=``
operator   operator address                ``=`` ``!=``
=========  ==============================  ==================

Parsing normalizes values to the units stored on a node (micro-dollars, MiB), so a
store can translate conditions to its own query and the pure ``matches`` states the
meaning that translation must keep.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from gpunet.errors import QuerySyntaxError, ValidationError
from gpunet.protocol.catalogue import gpu_model
from gpunet.protocol.nodes import NodeState
from gpunet.protocol.offers import REGION_PATTERN, nominal_vram_gib, region_matches
from gpunet.protocol.units import parse_usd

Value = int | float | str | tuple[str, ...]

ORDERING_OPS = ("<=", ">=", "<", ">", "=", "!=")
EQUALITY_OPS = ("=", "!=")
MAX_FILTER_NUMBER = Decimal(10) ** 15
_TERM = re.compile(r"\s*([A-Za-z_]+)\s*(<=|>=|!=|==|=|<|>)\s*([^\s<>=!]+)\s*")

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": op.eq,
    "!=": op.ne,
    "<": op.lt,
    "<=": op.le,
    ">": op.gt,
    ">=": op.ge,
}


@dataclass(frozen=True)
class OfferView:
    """The flat view of a node that filters are evaluated against."""

    node_id: str
    operator: str
    gpu: str
    gpu_count: int
    vram_mib: int
    price_micros: int
    region: str
    fp16_tflops: float
    cpu_cores: int
    memory_mib: int
    disk_gib: int
    state: str

    @property
    def vram_gib(self) -> int:
        return nominal_vram_gib(self.vram_mib)


@dataclass(frozen=True)
class Condition:
    """One parsed term; ``attribute`` names an ``OfferView`` field."""

    attribute: str
    op: str
    value: Value


def _decimal(field: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise QuerySyntaxError(field, text, "expected a number, like 2.5") from None
    if not value.is_finite() or value < 0:
        raise QuerySyntaxError(field, text, "expected a non-negative number")
    # A hostile exponent (1e999999999) would otherwise build a huge integer.
    if value >= MAX_FILTER_NUMBER:
        raise QuerySyntaxError(field, text, f"expected a number below {MAX_FILTER_NUMBER:.0e}")
    return value


def _int(field: str, text: str) -> int:
    value = _decimal(field, text)
    if value != value.to_integral_value():
        raise QuerySyntaxError(field, text, "expected a whole number")
    return int(value)


def _gib_to_mib(field: str, text: str) -> int:
    return int(_decimal(field, text) * 1024)


def _number(field: str, text: str) -> int | float:
    value = _decimal(field, text)
    return int(value) if value == value.to_integral_value() else float(value)


def _price(field: str, text: str) -> int:
    _decimal(field, text)
    try:
        return parse_usd(text, field)
    except ValidationError as exc:
        raise QuerySyntaxError(field, text, exc.message) from None


def _gpu(field: str, text: str) -> tuple[str, ...]:
    names = []
    for name in text.split(","):
        try:
            names.append(gpu_model(name).name)
        except ValidationError as exc:
            raise QuerySyntaxError(field, name, exc.message) from None
    return tuple(names)


def _region(field: str, text: str) -> str:
    if not REGION_PATTERN.fullmatch(text):
        raise QuerySyntaxError(field, text, "expected a region like eu or us-east")
    return text


def _state(field: str, text: str) -> str:
    states = [s.value for s in NodeState]
    if text.lower() not in states:
        raise QuerySyntaxError(field, text, f"expected one of {', '.join(states)}")
    return text.lower()


def _address(field: str, text: str) -> str:
    if not re.fullmatch(r"0x[0-9a-fA-F]{40}", text):
        raise QuerySyntaxError(field, text, "expected a 0x-prefixed 40-hex-digit address")
    return text.lower()


@dataclass(frozen=True)
class _Field:
    attribute: str
    ops: tuple[str, ...]
    parse: Callable[[str, str], Value]


FIELDS: dict[str, _Field] = {
    "gpu": _Field("gpu", EQUALITY_OPS, _gpu),
    "count": _Field("gpu_count", ORDERING_OPS, _int),
    "vram": _Field("vram_gib", ORDERING_OPS, _number),
    "price": _Field("price_micros", ORDERING_OPS, _price),
    "region": _Field("region", EQUALITY_OPS, _region),
    "tflops": _Field("fp16_tflops", ORDERING_OPS, _number),
    "cpu": _Field("cpu_cores", ORDERING_OPS, _int),
    "ram": _Field("memory_mib", ORDERING_OPS, _gib_to_mib),
    "disk": _Field("disk_gib", ORDERING_OPS, _int),
    "state": _Field("state", EQUALITY_OPS, _state),
    "operator": _Field("operator", EQUALITY_OPS, _address),
}

MAX_FILTER_LENGTH = 1000


def parse_filter(text: str) -> list[Condition]:
    """Parse a filter into conditions; an empty filter matches everything."""
    if len(text) > MAX_FILTER_LENGTH:
        raise QuerySyntaxError("where", text[:40] + "...", f"longer than {MAX_FILTER_LENGTH}")
    conditions: list[Condition] = []
    position = 0
    while position < len(text.rstrip()):
        term = _TERM.match(text, position)
        if term is None:
            rest = text[position:].split()[0]
            raise QuerySyntaxError(
                "where", rest, "expected field, operator and value, like price<2.5"
            )
        conditions.append(_condition(*term.groups()))
        position = term.end()
    return conditions


def _condition(name: str, operator_text: str, raw: str) -> Condition:
    field = FIELDS.get(name.lower())
    if field is None:
        raise QuerySyntaxError("where", name, f"unknown field; known fields: {', '.join(FIELDS)}")
    operator_text = "=" if operator_text == "==" else operator_text
    if operator_text not in field.ops:
        allowed = " ".join(field.ops)
        raise QuerySyntaxError(name, operator_text, f"operator not allowed; use one of {allowed}")
    return Condition(field.attribute, operator_text, field.parse(name.lower(), raw))


def _holds(condition: Condition, view: OfferView) -> bool:
    actual = getattr(view, condition.attribute)
    if condition.attribute == "gpu":
        assert isinstance(condition.value, tuple)
        inside = actual in condition.value
        return inside if condition.op == "=" else not inside
    if condition.attribute == "region":
        assert isinstance(condition.value, str)
        inside = region_matches(actual, condition.value)
        return inside if condition.op == "=" else not inside
    if condition.attribute == "operator":
        actual = actual.lower()
    return _COMPARE[condition.op](actual, condition.value)


def matches(conditions: Sequence[Condition], view: OfferView) -> bool:
    """True when every condition holds for ``view``."""
    return all(_holds(c, view) for c in conditions)
