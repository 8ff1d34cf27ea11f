"""Schemathesis over every operation of the OpenAPI schema: no request may get a 5xx.

Two apps are fuzzed: one as deployed, where nearly every write stops at the signature
check, and one whose signature check accepts anyone (while still reading the body),
so that generated bodies reach the registry, the store and the error mapping.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI, Request
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from gpunet.indexer import IndexerSettings, create_app
from gpunet.indexer.context import app_context
from gpunet.indexer.signing import SignedWrite, verify_signed_request
from gpunet.indexer.testing import new_nonce
from gpunet.protocol.auth import SignedRequest

FUZZ_OPERATOR = "0x" + "f" * 40


async def _anyone(request: Request) -> SignedWrite:
    await request.body()
    signed = SignedRequest(address=FUZZ_OPERATOR, timestamp=0, nonce=new_nonce())
    return SignedWrite(signed, app_context(request.app).database, received_at=0.0)


def _app(data_dir: Path, trusting: bool) -> FastAPI:
    app = create_app(IndexerSettings(data_dir=data_dir, sweep_interval_s=3600))
    if trusting:
        app.dependency_overrides[verify_signed_request] = _anyone
    return app


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("fuzz")


schema = schemathesis.pytest.from_fixture("fuzz_schema")


@pytest.fixture(scope="module", params=["signed", "trusting"])
def fuzz_schema(request: pytest.FixtureRequest, data_root: Path) -> schemathesis.BaseSchema:
    app = _app(data_root / request.param, trusting=request.param == "trusting")
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_no_request_gets_a_server_error(case: schemathesis.Case) -> None:
    if any(parameter.name == "wait_s" for parameter in case.operation.query):
        # A long-poll with nothing to wake it answers after wait_s; fuzzing needs no wait.
        case.query = {**(case.query or {}), "wait_s": 0}
    case.call_and_validate(checks=[not_a_server_error])
