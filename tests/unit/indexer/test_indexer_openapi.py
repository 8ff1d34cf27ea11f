"""The printed OpenAPI schema: stable, and every operation documented."""

from __future__ import annotations

import json

import pytest

from gpunet.indexer import openapi


def test_schema_is_printed_sorted_and_documents_every_operation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert openapi.main() == 0
    printed = capsys.readouterr().out

    schema = json.loads(printed)
    assert printed == json.dumps(schema, indent=2, sort_keys=True) + "\n"
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) == 43
    for operation in operations:
        assert operation["tags"] and operation["description"] and operation["summary"]
