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

This module holds the data types and their rules; how a spec is written down (keys,
units, YAML) lives in ``jobspec_io``. ``parse_job_spec``, ``job_spec_from_dict`` and
``job_spec_to_dict`` are importable from here too, so callers need only this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

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


# The reading and writing side lives in jobspec_io, which builds these types; it is
# imported on first call, not at import time, so that either module can be imported
# first without a cycle.


def parse_job_spec(text: str, *, source: str = "job.yaml") -> JobSpec:
    """Parse and check a YAML job spec; ``source`` names the file in error messages."""
    from gpunet.protocol import jobspec_io

    return jobspec_io.parse_job_spec(text, source=source)


def job_spec_from_dict(data: Mapping[str, Any], *, source: str = "job spec") -> JobSpec:
    """Check a spec given as a mapping (parsed YAML, or the JSON the indexer receives)."""
    from gpunet.protocol import jobspec_io

    return jobspec_io.job_spec_from_dict(data, source=source)


def job_spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """The spec as canonical JSON-able data; ``job_spec_from_dict`` reads it back equal."""
    from gpunet.protocol import jobspec_io

    return jobspec_io.job_spec_to_dict(spec)
