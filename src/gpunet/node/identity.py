"""The node's identity on disk: ``<data_dir>/node.json`` holds its node id.

The id is made once ("n-" and 12 hex digits) and kept, so a restarted agent comes back
as the same node and keeps its history with the indexer.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from gpunet.errors import ConfigError, ValidationError
from gpunet.protocol.offers import validate_node_id

NODE_FILE = "node.json"


def new_node_id() -> str:
    """A fresh random node id like ``n-3fa2c1d4e5f6``."""
    return "n-" + secrets.token_hex(6)


def load_or_create_node_id(data_dir: Path) -> str:
    """Return the node id stored in ``data_dir``, creating it on first use."""
    path = data_dir / NODE_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _create_once(path, new_node_id())
    return read_node_id(path)


def read_node_id(path: Path) -> str:
    """Read and check the node id in ``path``; ConfigError names the file if it is bad."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        return validate_node_id(stored["node_id"])
    except (OSError, ValueError, KeyError, TypeError, ValidationError) as exc:
        raise ConfigError(
            f"node file {path} is unreadable or has no valid node_id ({exc}); "
            "restore it, or delete it to register as a new node"
        ) from exc


def _create_once(path: Path, node_id: str) -> None:
    """Write ``path`` atomically unless it exists; a concurrent creator's id wins."""
    content = json.dumps({"node_id": node_id}, indent=2) + "\n"
    fd, tmp_name = tempfile.mkstemp(prefix=".node.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as tmp:
            tmp.write(content)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.link(tmp_name, path)  # fails if another process created it first
    except FileExistsError:
        pass  # that process's id is the node's id; read_node_id returns it
    finally:
        Path(tmp_name).unlink(missing_ok=True)
