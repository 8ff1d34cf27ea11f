"""Signed results: what the checker signs is exactly what the indexer verifies."""

from __future__ import annotations

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from gpunet.api.checks import MAX_EVIDENCE_BYTES
from gpunet.checker.outcome import (
    CheckOutcome,
    bounded_evidence,
    failed,
    one_line,
    passed,
    recover_signer,
    same_address,
    sign_result,
)
from gpunet.checker.testing import make_task, sign_text
from gpunet.protocol.vote import Verdict, evidence_digest, result_message


def test_signature_recovers_over_the_parsed_body(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    task = make_task(operator.address, "capacity")
    outcome = failed("answered in 2.31 s,\n deadline 1.20 s", elapsed_s=2.31, tiles=[3, 1])

    result = sign_result(checker_key, task, outcome)
    # What the indexer does: re-read the JSON body, digest the evidence, recover.
    body = type(result).model_validate_json(result.model_dump_json())
    message = result_message(
        task.check_id, task.node_id, "capacity", body.verdict, evidence_digest(body.evidence)
    )

    signer = Account.recover_message(encode_defunct(text=message), signature=body.signature)
    assert signer == checker_key.address
    assert body.detail == "answered in 2.31 s, deadline 1.20 s"  # one line
    assert body.verdict == "fail"


def test_a_checker_cannot_sign_an_inconclusive_vote(
    checker_key: LocalAccount, operator: LocalAccount
) -> None:
    with pytest.raises(ValueError, match="pass or fail"):
        sign_result(
            checker_key, make_task(operator.address), CheckOutcome(Verdict.INCONCLUSIVE, "?")
        )


def test_oversized_evidence_keeps_only_its_keys() -> None:
    huge = {"tiles": list(range(5000)), "reason": "x"}

    bounded = bounded_evidence(huge)

    assert bounded == {"truncated": True, "keys": ["reason", "tiles"]}
    assert bounded_evidence({"a": 1}) == {"a": 1}
    assert len(str(bounded)) < MAX_EVIDENCE_BYTES


def test_recover_signer_refuses_malformed_signatures(operator: LocalAccount) -> None:
    good = sign_text(operator, "hello")

    assert recover_signer("hello", good) == operator.address
    assert recover_signer("hello", None) is None
    assert recover_signer("hello", "0x1234") is None
    assert recover_signer("hello", "0x" + "ff" * 65) is None
    assert recover_signer("hello", "0x" + "11" * 64 + "05") is None


def test_small_helpers() -> None:
    assert same_address("0xAbC", "0xabc") and not same_address(None, "0xabc")
    assert one_line("a\n b   c", 100) == "a b c"
    assert one_line("x" * 20, 10) == "xxxxxxx..."
    assert passed("ok").passed and not failed("no").passed
