"""Compiled contracts: ABI and bytecode, compiled once and cached by source hash.

Compiling a Vyper contract takes a second or more, and the CLI, the indexer and the
tests all need the same few contracts, so each compilation is cached as JSON under
the user's cache directory (``$GPUNET_CACHE_DIR``, else ``$XDG_CACHE_HOME/gpunet``,
else ``~/.cache/gpunet``) in ``contracts/<Name>-<key>.json``. The key hashes the
contract's source, the ``.vy``/``.vyi`` files beside it that it imports (directly or
through each other; a name in an ``import`` line is enough to count), and the vyper
and snekmate versions, so an edit or an upgrade compiles afresh and
never reuses stale bytecode. Files are written atomically, so several processes may
fill the cache at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from gpunet.chain.abi import AbiEntry
from gpunet.chain.errors import ChainError

CACHE_ENV = "GPUNET_CACHE_DIR"


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list[AbiEntry]
    bytecode: bytes
    source_hash: str


def default_cache_dir() -> Path:
    """Where compiled contracts are cached (see the module docstring)."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "gpunet"


def default_source_dir() -> Path:
    """The project's contracts (``gpunet.contracts``)."""
    from gpunet.contracts import CONTRACTS_DIR

    return Path(CONTRACTS_DIR)


class Artifacts:
    """Compiled contracts of one source directory, cached on disk and in memory."""

    def __init__(self, source_dir: Path | None = None, cache_dir: Path | None = None) -> None:
        self.source_dir = source_dir or default_source_dir()
        self.cache_dir = (cache_dir or default_cache_dir()) / "contracts"
        self._loaded: dict[str, Artifact] = {}

    def get(self, name: str) -> Artifact:
        """The artifact of ``<source_dir>/<name>.vy``, compiling it on a cache miss."""
        if name not in self._loaded:
            self._loaded[name] = self._load_or_compile(name)
        return self._loaded[name]

    def source_hash(self, name: str) -> str:
        """The cache key of ``name`` (see the module docstring)."""
        path = self._source_path(name)
        digest = hashlib.sha256()
        for dependency in ("vyper", "snekmate"):
            digest.update(f"{dependency}={_version(dependency)}\n".encode())
        digest.update(path.read_bytes())
        for other in sorted(_local_imports(path, self.source_dir)):
            digest.update(other.name.encode() + b"\0" + other.read_bytes())
        return digest.hexdigest()[:32]

    def _source_path(self, name: str) -> Path:
        path = self.source_dir / f"{name}.vy"
        if not path.is_file():
            raise ChainError(f"no contract source {path}; check the contract name {name!r}")
        return path

    def _load_or_compile(self, name: str) -> Artifact:
        key = self.source_hash(name)
        cached = self.cache_dir / f"{name}-{key}.json"
        if cached.is_file():
            try:
                return _read(cached, name, key)
            except (OSError, ValueError, KeyError):
                pass  # a damaged cache entry is compiled again and replaced
        abi, bytecode = _compile(self._source_path(name))
        _write_atomic(cached, {"abi": abi, "bytecode": bytecode.hex()})
        return Artifact(name, abi, bytecode, key)


_IMPORT_RE = re.compile(r"^\s*(?:from\s+\S+\s+)?import\s+(\w+)", re.MULTILINE)


def _local_imports(path: Path, source_dir: Path) -> set[Path]:
    """The ``.vy``/``.vyi`` files beside ``path`` that it imports, directly or not."""
    found: set[Path] = set()
    pending = [path]
    while pending:
        text = pending.pop().read_text(encoding="utf-8")
        for module in _IMPORT_RE.findall(text):
            for candidate in (source_dir / f"{module}.vy", source_dir / f"{module}.vyi"):
                if candidate.is_file() and candidate != path and candidate not in found:
                    found.add(candidate)
                    pending.append(candidate)
    return found


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "absent"


def _compile(path: Path) -> tuple[list[AbiEntry], bytes]:
    from vyper.compiler import compile_from_file_input
    from vyper.compiler.input_bundle import FilesystemInputBundle
    from vyper.exceptions import VyperException

    # sys.path lets `from snekmate... import` resolve to the installed package.
    search = [path.parent, *(Path(entry) for entry in sys.path if entry)]
    bundle = FilesystemInputBundle(search)
    try:
        output = compile_from_file_input(
            bundle.load_file(path), input_bundle=bundle, output_formats=["abi", "bytecode"]
        )
    except VyperException as exc:
        raise ChainError(f"cannot compile {path}: {exc}") from exc
    bytecode = str(output["bytecode"])
    return list(output["abi"]), bytes.fromhex(bytecode.removeprefix("0x"))


def _read(path: Path, name: str, key: str) -> Artifact:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return Artifact(name, list(data["abi"]), bytes.fromhex(data["bytecode"]), key)


def _write_atomic(path: Path, content: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            json.dump(content, tmp)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
