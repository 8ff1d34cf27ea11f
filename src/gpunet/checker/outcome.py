"""What a check finds, and the signed result that carries it to the indexer.

A runner returns a ``CheckOutcome``: a pass or fail vote, one line for people, and
small JSON evidence. ``sign_result`` turns it into the ``CheckResultIn`` the indexer
accepts: the checker signs (EIP-191) ``protocol.vote.result_message`` over the check,
the node, the kind, the vote and the SHA-256 of the canonical evidence, so neither the
vote nor its evidence can be changed after the fact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpunet.api.checks import MAX_EVIDENCE_BYTES, SIGNATURE_PATTERN, CheckResultIn, CheckTask
from gpunet.protocol.vote import Verdict, evidence_digest, result_message

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

MAX_DETAIL_CHARS = 500
_SIGNATURE = re.compile(SIGNATURE_PATTERN)


@dataclass(frozen=True)
class CheckOutcome:
    """One checker's finding on one check: its vote, why, and the evidence."""

    verdict: Verdict
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS


def passed(detail: str, **evidence: Any) -> CheckOutcome:
    return CheckOutcome(Verdict.PASS, detail, evidence)


def failed(detail: str, **evidence: Any) -> CheckOutcome:
    return CheckOutcome(Verdict.FAIL, detail, evidence)


def sign_result(account: LocalAccount, task: CheckTask, outcome: CheckOutcome) -> CheckResultIn:
    """The signed body of ``POST /v1/checks/{check_id}/results`` for ``outcome``."""
    from eth_account.messages import encode_defunct

    if outcome.verdict not in (Verdict.PASS, Verdict.FAIL):
        raise ValueError(f"a checker votes pass or fail, not {outcome.verdict!r}")
    evidence = bounded_evidence(outcome.evidence)
    message = result_message(
        task.check_id, task.node_id, task.kind, str(outcome.verdict), evidence_digest(evidence)
    )
    signature = account.sign_message(encode_defunct(text=message)).signature.hex()
    return CheckResultIn(
        verdict=outcome.verdict.value,
        detail=one_line(outcome.detail, MAX_DETAIL_CHARS),
        evidence=evidence,
        signature=signature if signature.startswith("0x") else "0x" + signature,
    )


def bounded_evidence(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """``evidence`` as the indexer stores it; too large, only its keys are kept."""
    plain: dict[str, Any] = json.loads(json.dumps(dict(evidence), sort_keys=True))
    if len(json.dumps(plain, separators=(",", ":"))) <= MAX_EVIDENCE_BYTES:
        return plain
    # Large evidence means a bug in a runner, not a reason to lose the vote.
    return {"truncated": True, "keys": sorted(plain)[:50]}


def recover_signer(message: str, signature: object) -> str | None:
    """The address that signed ``message`` (EIP-191), or None for a malformed signature."""
    from eth_account import Account
    from eth_account.messages import encode_defunct
    from eth_keys.exceptions import BadSignature

    if not isinstance(signature, str) or not _SIGNATURE.fullmatch(signature):
        return None
    try:
        address: str = Account.recover_message(encode_defunct(text=message), signature=signature)
    except (BadSignature, ValueError):
        return None
    return address


def same_address(left: str | None, right: str | None) -> bool:
    """Addresses are equal whatever their checksum capitals."""
    return left is not None and right is not None and left.lower() == right.lower()


def one_line(text: str, limit: int) -> str:
    """``text`` on one line, cut to ``limit`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
