"""Usage receipts: the texts node and client sign, and who signed them."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from gpunet.errors import ValidationError
from gpunet.protocol.receipts import (
    client_receipt_message,
    node_receipt_message,
    outputs_digest,
    signer_of,
    usage_ms,
)

SHA = "ab" * 32
PAIRS = st.lists(st.tuples(st.text(min_size=1, max_size=20), st.just(SHA)), max_size=8)


@given(PAIRS, st.randoms())
def test_the_outputs_digest_ignores_the_order_of_the_outputs(
    pairs: list[tuple[str, str]], rng: object
) -> None:
    shuffled = list(pairs)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert outputs_digest(shuffled) == outputs_digest(pairs)


def test_the_outputs_digest_changes_with_any_path_or_hash() -> None:
    base = outputs_digest([("out/a.csv", SHA)])
    assert outputs_digest([("out/b.csv", SHA)]) != base
    assert outputs_digest([("out/a.csv", "cd" * 32)]) != base
    assert outputs_digest([]) != base


def test_messages_name_every_field_one_a_line() -> None:
    node = node_receipt_message("j-0123456789abcdef", 2, "succeeded", 12.3456, SHA)
    assert node.split("\n") == [
        "gpunet-node-receipt-v1", "j-0123456789abcdef", "2", "succeeded", "12346", SHA,
    ]  # fmt: skip
    client = client_receipt_message("j-0123456789abcdef", 2, "disputed", SHA)
    assert client.split("\n")[-2:] == ["disputed", SHA]
    assert usage_ms(0.0004) == 0


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: node_receipt_message("j-1", 0, "succeeded", 1.0, SHA), "attempt"),
        (lambda: node_receipt_message("j-1", 1, "succeeded\nforged", 1.0, SHA), "outcome"),
        (lambda: node_receipt_message("j-1", 1, "succeeded", 1.0, "XYZ"), "outputs_sha256"),
        (lambda: client_receipt_message("j-1", 1, "maybe", SHA), "verdict"),
    ],
)
def test_bad_fields_are_refused_by_name(call: object, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        call()  # type: ignore[operator]
    assert refused.value.field == field


def test_the_signer_is_recovered_and_garbage_recovers_nobody() -> None:
    account = Account.create()
    message = client_receipt_message("j-1", 1, "accepted", SHA)
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    assert signer_of(message, signature) == account.address
    assert signer_of(message.replace("accepted", "disputed"), signature) != account.address
    assert signer_of(message, "0x" + "00" * 65) is None
