"""Reading and writing job specs: YAML text and mappings in, canonical mappings out.

``gpunet.protocol.jobspec`` owns what a valid spec is (the data types and their
rules); this module owns how a spec is written down: the friendly and canonical keys,
the units of prices, durations and sizes, refusing unknown or repeated keys, and YAML
errors that name the line. Keeping the two apart keeps each module about one concept;
callers keep importing ``parse_job_spec``, ``job_spec_from_dict`` and
``job_spec_to_dict`` from ``gpunet.protocol.jobspec``, which forwards to this module.
"""

from __future__ import annotations

import difflib
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict
from decimal import Decimal
from typing import Any, TypeVar

import yaml

from gpunet.errors import ValidationError
from gpunet.protocol.jobspec import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_SESSION_HOLD_S,
    MAX_SPEC_CHARS,
    SPEC_VERSION,
    InputFile,
    JobSpec,
    Resources,
)
from gpunet.protocol.units import parse_usd

_SIZE = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,6})?) ?(mib|mi|gib|gi|tib|ti)?", re.IGNORECASE)
_MIB_PER_UNIT = {"mib": 1, "mi": 1, "gib": 1024, "gi": 1024, "tib": 1024**2, "ti": 1024**2}
_DURATION = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]{1,6})?[dhms])+")
_DURATION_PART = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)([dhms])")
_SECONDS_PER_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_YAML_HINT = "; check the indentation, and quote values containing ': ' or ' #'"
_DURATION_HINT = "write a duration like 90s, 30m, 2h, 1d or 1h30m, or whole seconds"
_T = TypeVar("_T")
_D = TypeVar("_D")


# Reading a spec from a mapping (YAML or JSON). Friendly keys map to canonical ones.
_TOP_ALIASES = {
    "max_price": "max_price_micros",
    "max_duration": "max_duration_s",
    "deadline": "deadline_s",
    "session_hold": "session_hold_s",
}
_RESOURCE_ALIASES = {"memory": "memory_mib", "disk": "disk_gib", "min_vram": "min_vram_gib"}
_TOP_KEYS = frozenset(
    {"version", "name", "kind", "resources", "command", "inputs", "outputs", "env"}
    | {"region", "max_latency_ms", "redundancy", "network", "runtime", "image"}
    | {"checkpoint_dir", "expose_port"}
    | set(_TOP_ALIASES)
    | set(_TOP_ALIASES.values())
)
_RESOURCE_KEYS = frozenset(
    {"gpu_count", "gpu_model", "min_fp16_tflops", "cpu_cores"}
    | set(_RESOURCE_ALIASES)
    | set(_RESOURCE_ALIASES.values())
)
_INPUT_KEYS = frozenset({"source", "target"})


def _unknown_key(name: str, key: object, known: frozenset[str], moved: frozenset[str]) -> None:
    text = str(key)
    if text in moved:
        hint = "it belongs under resources:"
    else:
        close = difflib.get_close_matches(text, sorted(known), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(known))}"
    raise ValidationError(name, key, f"unknown field; {hint}")


class _Section:
    """One mapping of a spec; unknown keys are refused on entry, None reads as absent.

    ``renames`` collects canonical field -> (friendly field, value as written), so an
    error found on the canonical value names the key and the value the buyer wrote.
    """

    def __init__(
        self,
        data: object,
        path: str,
        known: frozenset[str],
        renames: dict[str, tuple[str, Any]] | None = None,
        moved: frozenset[str] = frozenset(),
        label: str = "",
    ) -> None:
        if not isinstance(data, Mapping):
            raise ValidationError(label or path, data, "must be a mapping of key: value lines")
        self._data: Mapping[Any, Any] = data
        self._prefix = f"{path}." if path else ""
        self._renames = {} if renames is None else renames
        for key in data:
            if key not in known:
                _unknown_key(self.path(str(key)), key, known, moved)

    def path(self, key: str) -> str:
        return self._prefix + key

    def has(self, key: str) -> bool:
        return self._data.get(key) is not None

    def read(self, key: str, convert: Callable[[str, Any], _T], default: _D) -> _T | _D:
        value = self._data.get(key)
        return default if value is None else convert(self.path(key), value)

    def read_pair(
        self, friendly: str, canonical: str, convert: Callable[[str, Any], int], default: _D
    ) -> int | _D:
        if self.has(friendly) and self.has(canonical):
            raise ValidationError(
                self.path(friendly),
                self._data[friendly],
                f"give {friendly} or {canonical}, not both",
            )
        if not self.has(friendly):
            return self.read(canonical, _whole, default)
        raw = self._data[friendly]
        self._renames[self.path(canonical)] = (self.path(friendly), raw)
        return convert(self.path(friendly), raw)


def _whole(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(name, value, "must be a whole number")
    return value


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, value, "must be a number, like 100 or 19.5")
    return float(value)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(name, value, "must be text; put it in quotes")
    return value


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(name, value, "must be true or false")
    return value


def _usd(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValidationError(name, value, "write a USD amount, like 2.50")
    return parse_usd(str(value) if isinstance(value, float) else value, field=name)


def _duration_s(name: str, value: object) -> int:
    """Whole seconds from ``90``, ``"90s"``, ``"30m"``, ``"2h"``, ``"1d"`` or ``"1h30m"``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = value.lower().replace(" ", "") if isinstance(value, str) else ""
    if text.isascii() and text.isdigit() and len(text) <= 12:
        return int(text)
    if not _DURATION.fullmatch(text):
        raise ValidationError(name, value, _DURATION_HINT)
    seconds = sum(
        (Decimal(n) * _SECONDS_PER_UNIT[u] for n, u in _DURATION_PART.findall(text)), Decimal(0)
    )
    if seconds != seconds.to_integral_value():
        raise ValidationError(name, value, "is not a whole number of seconds")
    return int(seconds)


def _size_mib(name: str, value: object, bare_unit: str) -> int:
    """MiB from a size with a binary unit (``"4GiB"``, ``"512MiB"``) or a bare number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value * _MIB_PER_UNIT[bare_unit]
    match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValidationError(name, value, "write a size like 4GiB or 512MiB (units MiB, GiB, TiB)")
    mib = Decimal(match[1]) * _MIB_PER_UNIT[(match[2] or bare_unit).lower()]
    if mib != mib.to_integral_value():
        raise ValidationError(name, value, "is not a whole number of MiB")
    return int(mib)


def _size_gib(name: str, value: object) -> int:
    mib = _size_mib(name, value, "gib")
    if mib % 1024:
        raise ValidationError(name, value, "is counted in whole GiB; write it like 20GiB")
    return mib // 1024


def _strings(name: str, value: object, example: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError(name, value, f"write a list, like {example}")
    for index, item in enumerate(value):
        _text(f"{name}[{index}]", item)
    return tuple(value)


def _command(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, str):
        return _strings(name, value, "[python, train.py]")
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        raise ValidationError(name, value, f"cannot be split into arguments: {error}") from None


def _input_file(path: str, item: object) -> InputFile:
    if isinstance(item, str):
        return InputFile(item)
    section = _Section(item, path, _INPUT_KEYS)
    source = section.read("source", _text, None)
    if source is None:
        raise ValidationError(section.path("source"), None, "is required: a file path")
    return InputFile(source, section.read("target", _text, ""))


def _inputs(name: str, value: object) -> tuple[InputFile, ...]:
    if not isinstance(value, list | tuple):
        raise ValidationError(name, value, "write a list, like [train.py, data/train.csv]")
    files = []
    for index, item in enumerate(value):
        path = f"{name}[{index}]"
        try:
            files.append(_input_file(path, item))
        except ValidationError as error:
            if not error.field.startswith(f"{name}."):
                raise
            # InputFile names its own fields without the list index; add it.
            field_name = path + error.field.removeprefix(name)
            raise ValidationError(field_name, error.value, error.message) from None
    return tuple(files)


def _env(name: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError(name, value, "write NAME: value lines, like DATA_DIR: data")
    for key, item in value.items():
        if not isinstance(key, str):
            raise ValidationError(name, key, "names are text, like DATA_DIR")
        if not isinstance(item, str):
            raise ValidationError(f"{name}.{key}", item, f'must be text; quote it: {key}: "{item}"')
    return dict(value)


def _resources(value: object, renames: dict[str, tuple[str, Any]]) -> Resources:
    if value is None:
        return Resources()
    section = _Section(value, "resources", _RESOURCE_KEYS, renames)
    return Resources(
        gpu_count=section.read("gpu_count", _whole, 0),
        gpu_model=section.read("gpu_model", _text, None),
        min_fp16_tflops=section.read("min_fp16_tflops", _number, 0.0),
        min_vram_gib=section.read_pair("min_vram", "min_vram_gib", _size_gib, 0),
        cpu_cores=section.read("cpu_cores", _whole, 1),
        memory_mib=section.read_pair(
            "memory", "memory_mib", lambda n, v: _size_mib(n, v, "mib"), 1024
        ),
        disk_gib=section.read_pair("disk", "disk_gib", _size_gib, 1),
    )


def job_spec_from_dict(data: Mapping[str, Any], *, source: str = "job spec") -> JobSpec:
    """Check a spec given as a mapping (parsed YAML, or the JSON the indexer receives).

    Friendly and canonical keys are both accepted; ``source`` names the document in
    errors about the document as a whole.
    """
    if data is None:
        raise ValidationError(source, None, "is empty; write at least name, command and max_price")
    renames: dict[str, tuple[str, Any]] = {}
    top = _Section(data, "", _TOP_KEYS, renames, moved=_RESOURCE_KEYS, label=source)
    version = top.read("version", _whole, SPEC_VERSION)
    if version != SPEC_VERSION:
        raise ValidationError(
            "version", version, f"this gpunet reads spec version {SPEC_VERSION}; upgrade gpunet"
        )
    try:
        return _build(top, renames)
    except ValidationError as error:
        if error.field not in renames:
            raise
        name, raw = renames[error.field]
        raise type(error)(name, raw, error.message) from None


def _build(top: _Section, renames: dict[str, tuple[str, Any]]) -> JobSpec:
    kind = top.read("kind", _text, "job")
    for key in ("session_hold", "session_hold_s"):
        if kind == "job" and top.has(key):
            raise ValidationError(
                key, top.read(key, _any, None), "is for sessions; set kind: session"
            )
    name = top.read("name", _text, None)
    if name is None:
        raise ValidationError("name", None, "is required: a short name, like train-resnet")
    price = top.read_pair("max_price", "max_price_micros", _usd, None)
    if price is None:
        raise ValidationError(
            "max_price", None, "is required: the most you pay per GPU-hour in USD, like 2.50"
        )
    return JobSpec(
        name=name,
        kind=kind,
        resources=_resources(top.read("resources", _any, None), renames),
        command=top.read("command", _command, ()),
        inputs=top.read("inputs", _inputs, ()),
        outputs=top.read("outputs", lambda n, v: _strings(n, v, "[out/*.csv]"), ()),
        env=top.read("env", _env, {}),
        max_price_micros=price,
        max_duration_s=top.read_pair(
            "max_duration", "max_duration_s", _duration_s, DEFAULT_MAX_DURATION_S
        ),
        deadline_s=top.read_pair("deadline", "deadline_s", _duration_s, None),
        region=top.read("region", _text, None),
        max_latency_ms=top.read("max_latency_ms", _whole, None),
        redundancy=top.read("redundancy", _whole, 1),
        network=top.read("network", _flag, False),
        runtime=top.read("runtime", _text, "bwrap"),
        image=top.read("image", _text, None),
        checkpoint_dir=top.read("checkpoint_dir", _text, None),
        expose_port=top.read("expose_port", _whole, None),
        session_hold_s=top.read_pair(
            "session_hold", "session_hold_s", _duration_s, DEFAULT_SESSION_HOLD_S
        ),
    )


def _any(name: str, value: object) -> object:
    return value


class _RepeatedKey(yaml.MarkedYAMLError):
    """A mapping key written twice."""


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key written twice is an error, not a silent
    overwrite (a second ``max_price:`` further down would otherwise win unseen)."""


def _construct_unique_mapping(loader: _SpecLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        try:
            repeated = key in seen
        except TypeError:
            continue
        if repeated:
            raise _RepeatedKey(
                problem=f"the key {key!r} is written twice", problem_mark=key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_SpecLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def parse_job_spec(text: str, *, source: str = "job.yaml") -> JobSpec:
    """Parse and check a YAML job spec; ``source`` names the file in error messages."""
    if len(text) > MAX_SPEC_CHARS:
        raise ValidationError(source, len(text), "is over 256 KiB; move data into inputs")
    try:
        data = yaml.load(text, Loader=_SpecLoader)  # a SafeLoader: builds plain data only
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        lines = text.splitlines()
        if mark is None or mark.line >= len(lines):
            raise ValidationError(source, None, f"is not valid YAML: {error.problem}") from None
        raise ValidationError(
            source,
            lines[mark.line],
            f"is not valid YAML at line {mark.line + 1}, column {mark.column + 1}: "
            f"{error.problem}{'' if isinstance(error, _RepeatedKey) else _YAML_HINT}",
        ) from None
    except (yaml.YAMLError, ValueError, RecursionError) as error:
        # ValueError: a value YAML cannot build (a 5,000-digit int, a 13th month).
        raise ValidationError(source, None, f"is not valid YAML: {error}") from None
    return job_spec_from_dict(data, source=source)


def job_spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """The spec as canonical JSON-able data; ``job_spec_from_dict`` reads it back equal.

    Quantities use canonical keys and plain numbers; session-only keys appear only for
    sessions; optional values that are unset are ``None``.
    """
    data: dict[str, Any] = {
        "version": SPEC_VERSION,
        "name": spec.name,
        "kind": spec.kind,
        "resources": asdict(spec.resources),
        "command": list(spec.command),
        "inputs": [{"source": item.source, "target": item.target} for item in spec.inputs],
        "outputs": list(spec.outputs),
        "env": dict(spec.env),
        "max_price_micros": spec.max_price_micros,
        "max_duration_s": spec.max_duration_s,
        "deadline_s": spec.deadline_s,
        "region": spec.region,
        "max_latency_ms": spec.max_latency_ms,
        "redundancy": spec.redundancy,
        "network": spec.network,
        "runtime": spec.runtime,
        "image": spec.image,
        "checkpoint_dir": spec.checkpoint_dir,
    }
    if spec.kind == "session":
        data["expose_port"] = spec.expose_port
        data["session_hold_s"] = spec.session_hold_s
    return data
