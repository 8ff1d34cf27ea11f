"""The checker calls of the SDK: ``CheckCalls`` builds them over an ``ApiCore``.

Kept apart from ``_core`` so the core stays one concern (requests, signing, parsing)
and the checks API grows here. Like ``ApiCore``, every method returns a ``Call``
that the sync and async clients send; nothing here does I/O.

Signed: ``register_checker``, ``checker_tasks`` (long poll), ``report_check`` and
``check_output`` (a panel member reads an output of the job a delivery check is about).
Anyone: ``list_checkers``, ``get_checker``, ``node_checks``, ``get_check``, and the
settlements the checks lead to: ``settlements``, ``settlement``, ``rewards`` (an
account's reward claims with their Merkle proofs).
"""

from __future__ import annotations

import re

from gpunet.api.checks import (
    ADDRESS_PATTERN,
    CHECK_ID_PATTERN,
    CheckerList,
    CheckerPublic,
    CheckerRegistration,
    CheckPublic,
    CheckResultAck,
    CheckResultIn,
    NodeChecks,
    TaskBatch,
)
from gpunet.api.jobs import SHA256_PATTERN
from gpunet.api.rewards import RewardClaims, SettlementList, SettlementPublic
from gpunet.errors import ValidationError
from gpunet.sdk._core import ApiCore, Call, _bytes, _model, _node_path, _seconds

MAX_CHECKS_LIMIT = 500

_CHECK_ID = re.compile(CHECK_ID_PATTERN)
_ADDRESS = re.compile(ADDRESS_PATTERN)
_SHA256 = re.compile(SHA256_PATTERN)


class CheckCalls:
    """The checks API as ``Call`` objects, built and signed by ``core``."""

    def __init__(self, core: ApiCore) -> None:
        self.core = core

    def register_checker(self, registration: CheckerRegistration) -> Call[CheckerPublic]:
        body = registration.model_dump_json().encode()
        return self.core._signed("POST", "/v1/checkers", body, _model(CheckerPublic))

    def checker_tasks(self, wait_s: float) -> Call[TaskBatch]:
        call = self.core._signed_get(
            "/v1/checkers/me/tasks", {"wait_s": _seconds(wait_s)}, _model(TaskBatch)
        )
        return self.core._waiting(call, wait_s)

    def report_check(self, check_id: str, result: CheckResultIn) -> Call[CheckResultAck]:
        body = result.model_dump_json().encode()
        path = _check_path(check_id) + "/results"
        return self.core._signed("POST", path, body, _model(CheckResultAck))

    def check_output(self, check_id: str, sha256: str) -> Call[bytes]:
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise ValidationError("sha256", sha256, "name an output by 64 lowercase hex digits")
        return self.core._signed_get(f"{_check_path(check_id)}/outputs/{sha256}", {}, _bytes)

    def list_checkers(self) -> Call[CheckerList]:
        return self.core._get("/v1/checkers", {}, _model(CheckerList))

    def get_checker(self, address: str) -> Call[CheckerPublic]:
        if not isinstance(address, str) or not _ADDRESS.fullmatch(address):
            raise ValidationError("address", address, "write an address as 0x and 40 hex digits")
        return self.core._get(f"/v1/checkers/{address}", {}, _model(CheckerPublic))

    def node_checks(self, node_id: str, limit: int) -> Call[NodeChecks]:
        if not 1 <= limit <= MAX_CHECKS_LIMIT:
            raise ValidationError("limit", limit, f"must be between 1 and {MAX_CHECKS_LIMIT}")
        path = _node_path(node_id) + "/checks"
        return self.core._get(path, {"limit": limit}, _model(NodeChecks))

    def get_check(self, check_id: str) -> Call[CheckPublic]:
        return self.core._get(_check_path(check_id), {}, _model(CheckPublic))

    def settlements(self, limit: int) -> Call[SettlementList]:
        if not 1 <= limit <= MAX_CHECKS_LIMIT:
            raise ValidationError("limit", limit, f"must be between 1 and {MAX_CHECKS_LIMIT}")
        return self.core._get("/v1/settlements", {"limit": limit}, _model(SettlementList))

    def settlement(self, epoch: int) -> Call[SettlementPublic]:
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValidationError("epoch", epoch, "an epoch is a whole number, 0 or more")
        return self.core._get(f"/v1/settlements/{epoch}", {}, _model(SettlementPublic))

    def rewards(self, account: str) -> Call[RewardClaims]:
        if not isinstance(account, str) or not _ADDRESS.fullmatch(account):
            raise ValidationError("account", account, "write an address as 0x and 40 hex digits")
        return self.core._get(f"/v1/rewards/{account}", {}, _model(RewardClaims))


def _check_path(check_id: str) -> str:
    if not isinstance(check_id, str) or not _CHECK_ID.fullmatch(check_id):
        raise ValidationError(
            "check_id", check_id, "a check id is c- and 16 hex digits, like c-0123456789abcdef"
        )
    return f"/v1/checks/{check_id}"
