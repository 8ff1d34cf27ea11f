"""The node id file: created once, then reused; a damaged file is a clear error."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gpunet.errors import ConfigError
from gpunet.node.identity import NODE_FILE, load_or_create_node_id


def test_node_id_is_created_once_and_reused(tmp_path: Path) -> None:
    data_dir = tmp_path / "node"

    first = load_or_create_node_id(data_dir)
    second = load_or_create_node_id(data_dir)

    assert re.fullmatch(r"n-[0-9a-f]{12}", first)
    assert second == first
    assert json.loads((data_dir / NODE_FILE).read_text()) == {"node_id": first}
    assert [p.name for p in data_dir.iterdir()] == [NODE_FILE]


def test_distinct_data_dirs_get_distinct_ids(tmp_path: Path) -> None:
    assert load_or_create_node_id(tmp_path / "a") != load_or_create_node_id(tmp_path / "b")


@pytest.mark.parametrize("content", ["not json", '{"id": "n-1"}', '{"node_id": "Bad Id"}'])
def test_damaged_node_file_names_the_file(tmp_path: Path, content: str) -> None:
    (tmp_path / NODE_FILE).write_text(content)

    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / NODE_FILE))):
        load_or_create_node_id(tmp_path)
