from __future__ import annotations

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from gpunet.errors import AuthError
from gpunet.protocol.auth import (
    HEADER_ADDRESS,
    HEADER_NONCE,
    HEADER_SIGNATURE,
    HEADER_TIMESTAMP,
    sign_request,
    verify_request,
)

ACCOUNT = Account.from_key("0x" + "11" * 32)
OTHER = Account.from_key("0x" + "22" * 32)
NOW = 1_764_072_000
NONCE = "0123456789abcdef0123"
PATH = "/v1/nodes/n-abc123/heartbeat"


def signed(body: bytes = b"{}") -> dict[str, str]:
    return sign_request(ACCOUNT, "POST", PATH, body, NOW, NONCE)


def test_good_signature_names_the_signer() -> None:
    request = verify_request(signed(), "POST", PATH, b"{}", now=NOW)
    assert request.address == ACCOUNT.address
    assert request.nonce == NONCE


def test_header_lookup_is_case_insensitive_in_lowercase_form() -> None:
    headers = {k.lower(): v for k, v in signed().items()}
    assert verify_request(headers, "POST", PATH, b"{}", now=NOW).address == ACCOUNT.address


@pytest.mark.parametrize("missing", [HEADER_ADDRESS, HEADER_SIGNATURE, HEADER_NONCE])
def test_missing_header_is_unsigned(missing: str) -> None:
    headers = signed()
    del headers[missing]
    with pytest.raises(AuthError) as info:
        verify_request(headers, "POST", PATH, b"{}", now=NOW)
    assert info.value.reason == "unsigned"
    assert missing in info.value.message


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("PUT", PATH, b"{}"), ("POST", "/v1/nodes/n-other1/heartbeat", b"{}"), ("POST", PATH, b"[]")],
)
def test_tampering_breaks_the_signature(method: str, path: str, body: bytes) -> None:
    with pytest.raises(AuthError) as info:
        verify_request(signed(), method, path, body, now=NOW)
    assert info.value.reason == "bad_signature"


def test_claiming_another_address_is_refused() -> None:
    headers = {**signed(), HEADER_ADDRESS: OTHER.address}
    with pytest.raises(AuthError, match="not by") as info:
        verify_request(headers, "POST", PATH, b"{}", now=NOW)
    assert info.value.reason == "bad_signature"


@pytest.mark.parametrize("skew", [-61, 61, 3600])
def test_stale_timestamps_are_refused(skew: int) -> None:
    with pytest.raises(AuthError) as info:
        verify_request(signed(), "POST", PATH, b"{}", now=NOW + skew)
    assert info.value.reason == "stale"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (HEADER_TIMESTAMP, "yesterday"),
        (HEADER_NONCE, "short"),
        (HEADER_SIGNATURE, "0x1234"),
        (HEADER_ADDRESS, "alice"),
    ],
)
def test_malformed_headers_are_named(header: str, value: str) -> None:
    with pytest.raises(AuthError) as info:
        verify_request({**signed(), header: value}, "POST", PATH, b"{}", now=NOW)
    assert info.value.reason == "malformed"
    assert header in info.value.message


@settings(max_examples=25)
@given(st.binary(max_size=256))
def test_any_body_round_trips(body: bytes) -> None:
    headers = sign_request(ACCOUNT, "PUT", PATH, body, NOW, NONCE)
    assert verify_request(headers, "PUT", PATH, body, now=NOW).address == ACCOUNT.address
