"""The job spec: what a buyer asks for, written in YAML and checked in one place.

A buyer writes a spec in YAML and runs ``gpunet quote job.yaml`` or ``gpunet run
job.yaml``; the SDK sends the same spec to the indexer as a JSON object, and the indexer
checks it again with this module, so a spec the CLI accepts is one the indexer accepts.

Quantities have two spellings with one meaning: a friendly key whose value carries the
unit (``max_price: 2.50``, ``max_duration: 30m``, ``memory: 4GiB``) and a canonical key
whose name carries it (``max_price_micros``, ``max_duration_s``, ``memory_mib``). A spec
gives either, never both. ``job_spec_to_dict`` writes canonical keys only, and reading
that back gives an equal spec. Reading the input files is the CLI's business; this
module only checks the paths. docs/job-spec.md is the reference page for buyers.
"""

from __future__ import annotations

import difflib
import math
import re
import shlex
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, TypeVar

import yaml

from gpunet.errors import UnknownGpuModel, ValidationError
from gpunet.protocol.catalogue import CATALOGUE, CPU_MODEL, gpu_model
from gpunet.protocol.offers import (
    MAX_CPU_CORES,
    MAX_DISK_GIB,
    MAX_GPUS_PER_NODE,
    MAX_MEMORY_MIB,
    MAX_PRICE_MICROS,
    REGION_PATTERN,
)
from gpunet.protocol.units import parse_usd

SPEC_VERSION = 1
KINDS = ("job", "session")
RUNTIMES = ("bwrap", "docker")
MAX_SPEC_CHARS = 256 * 1024
DEFAULT_MAX_DURATION_S = 3600
MAX_DURATION_S = 7 * 86400
MAX_DEADLINE_S = 30 * 86400
DEFAULT_SESSION_HOLD_S = 600
MIN_SESSION_HOLD_S = 60
MAX_SESSION_HOLD_S = 86400
MAX_LATENCY_MS = 10_000
MIN_EXPOSE_PORT = 1024
MAX_ARGS = 1024
MAX_FILES = 1000
MAX_ENV_VARS = 128
MAX_TEXT_CHARS = 32_768
MAX_PATH_CHARS = 1024
MAX_VRAM_GIB = max(m.vram_gib for m in CATALOGUE.values())
MAX_FP16_TFLOPS = max(m.fp16_tflops for m in CATALOGUE.values())

NAME_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
IMAGE_PATTERN = re.compile(r"^[a-z0-9][A-Za-z0-9._/:@-]{0,254}$")
_SIZE = re.compile(r"([0-9]{1,12}(?:\.[0-9]{1,6})?) ?(mib|mi|gib|gi|tib|ti)?", re.IGNORECASE)
_MIB_PER_UNIT = {"mib": 1, "mi": 1, "gib": 1024, "gi": 1024, "tib": 1024**2, "ti": 1024**2}
_DURATION = re.compile(r"(?:[0-9]{1,9}(?:\.[0-9]{1,6})?[dhms])+")
_DURATION_PART = re.compile(r"([0-9]{1,9}(?:\.[0-9]{1,6})?)([dhms])")
_SECONDS_PER_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_YAML_HINT = "; check the indentation, and quote values containing ': ' or ' #'"
_DURATION_HINT = "write a duration like 90s, 30m, 2h, 1d or 1h30m, or whole seconds"
_T = TypeVar("_T")
_D = TypeVar("_D")


class EnvVars(Mapping[str, str]):
    """A read-only, hashable mapping of environment variables, sorted by name."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        self._items = tuple(sorted(dict(items).items()))
        self._index = dict(self._items)

    def __getitem__(self, name: str) -> str:
        return self._index[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"EnvVars({self._index!r})"


def _require_range(name: str, value: float, low: float, high: float, unit: str = "") -> None:
    if not low <= value <= high:
        raise ValidationError(name, value, f"must be between {low:g} and {high:g}{unit}")


def _relative_path(name: str, path: str, example: str) -> str:
    """``path`` normalized (``./a//b`` -> ``a/b``); refused if it could leave the work dir."""
    if not path or len(path) > MAX_PATH_CHARS or "\0" in path:
        raise ValidationError(name, path, f"write a path of 1-{MAX_PATH_CHARS} characters")
    if "\\" in path:
        raise ValidationError(name, path, f"use forward slashes, like {example}")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts:
        raise ValidationError(
            name, path, f"must stay inside the job's work dir: a relative path like {example}"
        )
    return "/".join(parts)


@dataclass(frozen=True)
class Resources:
    """What one node must have; VRAM and TFLOPS are per GPU, 0 GPUs means CPU work."""

    gpu_count: int = 0
    gpu_model: str | None = None
    min_fp16_tflops: float = 0.0
    min_vram_gib: int = 0
    cpu_cores: int = 1
    memory_mib: int = 1024
    disk_gib: int = 1

    def __post_init__(self) -> None:
        _require_range("resources.gpu_count", self.gpu_count, 0, MAX_GPUS_PER_NODE, " GPUs")
        if not math.isfinite(self.min_fp16_tflops):
            raise ValidationError(
                "resources.min_fp16_tflops", self.min_fp16_tflops, "must be finite"
            )
        object.__setattr__(self, "min_fp16_tflops", float(self.min_fp16_tflops))
        _require_range("resources.min_fp16_tflops", self.min_fp16_tflops, 0, MAX_FP16_TFLOPS)
        _require_range("resources.min_vram_gib", self.min_vram_gib, 0, MAX_VRAM_GIB, " GiB")
        _require_range("resources.cpu_cores", self.cpu_cores, 1, MAX_CPU_CORES)
        _require_range("resources.memory_mib", self.memory_mib, 1, MAX_MEMORY_MIB, " MiB")
        _require_range("resources.disk_gib", self.disk_gib, 0, MAX_DISK_GIB, " GiB")
        if self.gpu_count == 0:
            self._check_cpu_only()
        elif self.gpu_model is not None:
            self._check_model(self.gpu_model)

    def _check_cpu_only(self) -> None:
        for name, value in (
            ("gpu_model", self.gpu_model),
            ("min_fp16_tflops", self.min_fp16_tflops or None),
            ("min_vram_gib", self.min_vram_gib or None),
        ):
            if value is not None:
                raise ValidationError(
                    f"resources.{name}",
                    value,
                    "asks for a GPU but gpu_count is 0; set gpu_count to 1 or more, "
                    f"or remove {name} for CPU work",
                )

    def _check_model(self, name: str) -> None:
        known = ", ".join(m for m in CATALOGUE if m != CPU_MODEL)
        try:
            model = gpu_model(name)
        except UnknownGpuModel:
            raise UnknownGpuModel(
                "resources.gpu_model", name, f"unknown GPU model; known models: {known}"
            ) from None
        if model.name == CPU_MODEL:
            raise ValidationError(
                "resources.gpu_model", name, "for CPU work set gpu_count: 0 and no gpu_model"
            )
        object.__setattr__(self, "gpu_model", model.name)
        if self.min_vram_gib > model.vram_gib:
            raise ValidationError(
                "resources.min_vram_gib",
                self.min_vram_gib,
                f"is more than the {model.vram_gib} GiB of a {model.name}; lower it or "
                "choose a larger model",
            )
        if self.min_fp16_tflops > model.fp16_tflops:
            raise ValidationError(
                "resources.min_fp16_tflops",
                self.min_fp16_tflops,
                f"is more than the {model.fp16_tflops:g} TFLOPS of a {model.name}; lower it "
                "or choose a faster model",
            )


@dataclass(frozen=True)
class InputFile:
    """A file copied from the buyer's machine into the job's work dir before the run.

    ``source`` is kept as written (relative to the spec file's folder, or absolute); the
    CLI resolves and hashes it. ``target`` defaults to the source's file name.
    """

    source: str
    target: str = ""

    def __post_init__(self) -> None:
        if not self.source or len(self.source) > MAX_PATH_CHARS or "\0" in self.source:
            raise ValidationError("inputs.source", self.source, "name a file on your machine")
        target = self.target or re.split(r"[\\/]", self.source)[-1]
        if not target:
            raise ValidationError("inputs.source", self.source, "name a file, not a folder")
        object.__setattr__(self, "target", _relative_path("inputs.target", target, "data/a.csv"))


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """A validated job or session request; construct it from text with ``parse_job_spec``."""

    name: str
    kind: str = "job"
    resources: Resources = field(default_factory=Resources)
    command: tuple[str, ...]
    inputs: tuple[InputFile, ...] = ()
    outputs: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=EnvVars)
    max_price_micros: int
    max_duration_s: int = DEFAULT_MAX_DURATION_S
    deadline_s: int | None = None
    region: str | None = None
    max_latency_ms: int | None = None
    redundancy: int = 1
    network: bool = False
    runtime: str = "bwrap"
    image: str | None = None
    checkpoint_dir: str | None = None
    expose_port: int | None = None
    session_hold_s: int = DEFAULT_SESSION_HOLD_S

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValidationError(
                "name", self.name, "use 1-64 letters, digits, dots, dashes or underscores"
            )
        if self.kind not in KINDS:
            raise ValidationError("kind", self.kind, "must be job or session")
        self._check_command()
        self._check_files()
        self._check_env()
        self._check_money_and_time()
        self._check_placement()
        self._check_runtime()
        self._check_session()

    def _check_command(self) -> None:
        object.__setattr__(self, "command", tuple(self.command))
        if not self.command or not self.command[0]:
            raise ValidationError(
                "command",
                list(self.command),
                "is required: the program and its arguments, like python train.py --epochs 3",
            )
        if len(self.command) > MAX_ARGS:
            raise ValidationError("command", len(self.command), f"has more than {MAX_ARGS} args")
        for index, arg in enumerate(self.command):
            if len(arg) > MAX_TEXT_CHARS or "\0" in arg:
                raise ValidationError(
                    f"command[{index}]", arg, f"must be at most {MAX_TEXT_CHARS} characters, no NUL"
                )

    def _check_files(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for name, listed in (("inputs", self.inputs), ("outputs", self.outputs)):
            if len(listed) > MAX_FILES:
                raise ValidationError(name, len(listed), f"list at most {MAX_FILES} entries")
        files: dict[str, InputFile] = {}  # target -> input
        folders: dict[str, InputFile] = {}  # every folder above a target -> its input
        for index, item in enumerate(self.inputs):
            parts = item.target.split("/")
            above = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
            earlier = folders.get(item.target) or next(
                (files[path] for path in [*above, item.target] if path in files), None
            )
            if earlier is not None:
                raise ValidationError(
                    f"inputs[{index}].target",
                    item.target,
                    f"clashes with the target {earlier.target!r} of {earlier.source!r}; "
                    "give each input its own target",
                )
            files[item.target] = item
            folders.update(dict.fromkeys(above, item))
        outputs = tuple(
            _relative_path(f"outputs[{i}]", pattern, "out/*.csv")
            for i, pattern in enumerate(self.outputs)
        )
        for index, pattern in enumerate(outputs):
            if pattern in outputs[:index]:
                raise ValidationError(f"outputs[{index}]", pattern, "is listed twice")
        object.__setattr__(self, "outputs", outputs)

    def _check_env(self) -> None:
        if len(self.env) > MAX_ENV_VARS:
            raise ValidationError("env", len(self.env), f"set at most {MAX_ENV_VARS} variables")
        for name, value in self.env.items():
            if not ENV_NAME_PATTERN.fullmatch(name):
                raise ValidationError(
                    "env", name, "names use capitals, digits and underscores, like DATA_DIR"
                )
            if name.startswith("GPUNET_"):
                raise ValidationError("env", name, "GPUNET_* names are set by the node agent")
            if len(value) > MAX_TEXT_CHARS or "\0" in value:
                raise ValidationError(
                    f"env.{name}", value, f"must be at most {MAX_TEXT_CHARS} characters, no NUL"
                )
        object.__setattr__(self, "env", EnvVars(self.env))

    def _check_money_and_time(self) -> None:
        if not 0 < self.max_price_micros <= MAX_PRICE_MICROS:
            raise ValidationError(
                "max_price_micros",
                self.max_price_micros,
                f"must be above 0 and at most {MAX_PRICE_MICROS} (500 USD per GPU-hour)",
            )
        _require_range("max_duration_s", self.max_duration_s, 1, MAX_DURATION_S, " s (7 days)")
        if self.deadline_s is None:
            return
        _require_range("deadline_s", self.deadline_s, 1, MAX_DEADLINE_S, " s (30 days)")
        if self.deadline_s < self.max_duration_s:
            raise ValidationError(
                "deadline_s",
                self.deadline_s,
                f"is shorter than max_duration ({self.max_duration_s} s); the job could not "
                "finish in time: raise the deadline or lower max_duration",
            )

    def _check_placement(self) -> None:
        if self.region is not None and not REGION_PATTERN.fullmatch(self.region):
            raise ValidationError(
                "region", self.region, "use lowercase words joined by dashes, like eu or us-east-1"
            )
        if self.max_latency_ms is not None:
            _require_range("max_latency_ms", self.max_latency_ms, 1, MAX_LATENCY_MS, " ms")
        if self.redundancy not in (1, 2):
            raise ValidationError(
                "redundancy", self.redundancy, "must be 1, or 2 to run on two nodes and compare"
            )
        if self.redundancy == 2 and self.kind == "session":
            raise ValidationError(
                "redundancy", self.redundancy, "a session runs on one node; use redundancy 1"
            )

    def _check_runtime(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValidationError("runtime", self.runtime, "must be bwrap or docker")
        if self.runtime == "docker" and self.image is None:
            raise ValidationError(
                "image", None, "runtime docker needs an image, like python:3.11-slim"
            )
        if self.runtime != "docker" and self.image is not None:
            raise ValidationError(
                "image", self.image, "is for runtime docker; remove it or set runtime: docker"
            )
        if self.image is not None and not IMAGE_PATTERN.fullmatch(self.image):
            raise ValidationError(
                "image", self.image, "use an image reference like python:3.11-slim"
            )
        if self.checkpoint_dir is None:
            return
        folder = _relative_path("checkpoint_dir", self.checkpoint_dir, "checkpoints")
        object.__setattr__(self, "checkpoint_dir", folder)
        for item in self.inputs:
            if folder == item.target or folder.startswith(item.target + "/"):
                raise ValidationError(
                    "checkpoint_dir", folder, f"is the input file {item.target!r}; pick a folder"
                )

    def _check_session(self) -> None:
        if self.kind == "job":
            if self.expose_port is not None:
                raise ValidationError(
                    "expose_port", self.expose_port, "is for sessions; set kind: session"
                )
            if self.session_hold_s != DEFAULT_SESSION_HOLD_S:
                raise ValidationError(
                    "session_hold_s", self.session_hold_s, "is for sessions; set kind: session"
                )
            return
        if self.expose_port is not None:
            _require_range("expose_port", self.expose_port, MIN_EXPOSE_PORT, 65535)
        _require_range(
            "session_hold_s", self.session_hold_s, MIN_SESSION_HOLD_S, MAX_SESSION_HOLD_S, " s"
        )


def billing_units(spec: JobSpec) -> int:
    """GPUs billed per hour of the lease; CPU-only work is billed as one unit."""
    return max(spec.resources.gpu_count, 1)


def max_cost_micros(spec: JobSpec) -> int:
    """The most the spec can cost: its budget price for the whole ``max_duration`` on
    every copy, rounded up as holds are, so no hold or charge for it is ever larger."""
    exact = spec.max_price_micros * billing_units(spec) * spec.max_duration_s
    return -(-exact // 3600) * spec.redundancy


def input_sources(spec: JobSpec) -> tuple[str, ...]:
    """The input paths as written, for the CLI to resolve, check and hash."""
    return tuple(item.source for item in spec.inputs)


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
