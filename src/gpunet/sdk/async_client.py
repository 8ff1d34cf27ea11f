"""The asynchronous client: sends what ``ApiCore`` builds over an ``httpx.AsyncClient``."""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from gpunet.api.checks import (
    CheckerList,
    CheckerPublic,
    CheckerRegistration,
    CheckPublic,
    CheckResultAck,
    CheckResultIn,
    NodeChecks,
    TaskBatch,
)
from gpunet.api.jobs import (
    AccountView,
    ClientReceiptIn,
    EventPage,
    FileRef,
    FinishIn,
    JobDetail,
    JobList,
    LogEntry,
    LogPage,
    QuoteOut,
    SessionAccess,
    UsageAck,
    WorkPoll,
)
from gpunet.api.models import (
    Health,
    HeartbeatAck,
    HeartbeatIn,
    NodeList,
    NodePublic,
    NodeRegistration,
    OfferList,
)
from gpunet.api.rewards import RewardClaims, SettlementList, SettlementPublic
from gpunet.sdk._checks import CheckCalls
from gpunet.sdk._core import DEFAULT_INDEXER_URL, DEFAULT_TIMEOUT_S, ApiCore, Call

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

T = TypeVar("T")


class AsyncClient:
    """``Client``'s async twin: the same methods and errors, awaited.

    ``transport`` replaces the network (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_INDEXER_URL,
        account: LocalAccount | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.core = ApiCore(base_url, account, timeout_s=timeout)
        self.checks = CheckCalls(self.core)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    @property
    def base_url(self) -> str:
        return self.core.base_url

    async def health(self) -> Health:
        return await self._send(self.core.health())

    async def metrics_text(self) -> str:
        return await self._send(self.core.metrics_text())

    async def register_node(self, node_id: str, registration: NodeRegistration) -> NodePublic:
        return await self._send(self.core.register_node(node_id, registration))

    async def heartbeat(self, node_id: str, beat: HeartbeatIn | None = None) -> HeartbeatAck:
        return await self._send(self.core.heartbeat(node_id, beat or HeartbeatIn()))

    async def leave(self, node_id: str) -> NodePublic:
        return await self._send(self.core.leave(node_id))

    async def list_nodes(
        self,
        state: str | None = None,
        operator: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> NodeList:
        return await self._send(self.core.list_nodes(state, operator, limit, offset))

    async def get_node(self, node_id: str) -> NodePublic:
        return await self._send(self.core.get_node(node_id))

    async def list_offers(
        self, where: str = "", order: str = "price", limit: int = 100
    ) -> OfferList:
        return await self._send(self.core.list_offers(where, order, limit))

    # -- buyers --

    async def upload_blob(self, data: bytes) -> str:
        """Store an input file; returns its SHA-256, the name to put in a ``FileRef``."""
        return await self._send(self.core.upload_blob(data))

    async def submit_job(
        self, spec: Mapping[str, Any], inputs: list[FileRef] | None = None
    ) -> JobDetail:
        """Submit a spec (``job_spec_to_dict`` form) whose input files are uploaded."""
        return await self._send(self.core.submit_job(spec, inputs or []))

    async def quote(self, spec: Mapping[str, Any]) -> QuoteOut:
        return await self._send(self.core.quote(spec))

    async def list_jobs(
        self,
        buyer: str | None = None,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> JobList:
        return await self._send(self.core.list_jobs(buyer, state, limit, offset))

    async def get_job(self, job_id: str) -> JobDetail:
        return await self._send(self.core.get_job(job_id))

    async def job_events(self, job_id: str, after: int = 0, wait_s: float = 0) -> EventPage:
        """Events after ``after``; waits up to ``wait_s`` seconds for one to come."""
        return await self._send(self.core.job_events(job_id, after, wait_s))

    async def job_logs(self, job_id: str, after: int = 0, wait_s: float = 0) -> LogPage:
        """Log lines after ``after``; waits up to ``wait_s`` seconds for one to come."""
        return await self._send(self.core.job_logs(job_id, after, wait_s))

    async def cancel_job(self, job_id: str, reason: str = "cancelled by the buyer") -> JobDetail:
        return await self._send(self.core.cancel_job(job_id, reason))

    async def download_output(self, job_id: str, path: str) -> bytes:
        return await self._send(self.core.download_output(job_id, path))

    async def session_access(self, job_id: str) -> SessionAccess:
        return await self._send(self.core.session_access(job_id))

    async def deposit(self, amount_micros: int) -> AccountView:
        return await self._send(self.core.deposit(amount_micros))

    async def withdraw(self, amount_micros: int) -> AccountView:
        return await self._send(self.core.withdraw(amount_micros))

    async def set_auto_topup(
        self, amount_micros: int, threshold_micros: int, limit_micros: int
    ) -> AccountView:
        """Top up by ``amount_micros`` below ``threshold_micros``, at most ``limit_micros``."""
        call = self.core.set_auto_topup(amount_micros, threshold_micros, limit_micros)
        return await self._send(call)

    async def get_account(self, address: str) -> AccountView:
        return await self._send(self.core.get_account(address))

    # -- nodes --

    async def poll_work(self, node_id: str, wait_s: float = 20) -> WorkPoll:
        """New assignments and cancellations; waits up to ``wait_s`` seconds for some."""
        return await self._send(self.core.poll_work(node_id, wait_s))

    async def start_job(self, job_id: str, attempt: int, endpoint: str | None = None) -> UsageAck:
        return await self._send(self.core.start_job(job_id, attempt, endpoint))

    async def append_logs(self, job_id: str, attempt: int, lines: list[LogEntry]) -> None:
        await self._send(self.core.append_logs(job_id, attempt, lines))

    async def report_usage(self, job_id: str, attempt: int, usage_s: float) -> UsageAck:
        return await self._send(self.core.report_usage(job_id, attempt, usage_s))

    async def put_checkpoint(self, job_id: str, data: bytes) -> str:
        return await self._send(self.core.put_checkpoint(job_id, data))

    async def get_checkpoint(self, job_id: str) -> bytes:
        return await self._send(self.core.get_checkpoint(job_id))

    async def get_input(self, job_id: str, target: str) -> bytes:
        return await self._send(self.core.get_input(job_id, target))

    async def put_output(self, job_id: str, data: bytes) -> str:
        return await self._send(self.core.put_output(job_id, data))

    async def send_receipt(self, job_id: str, receipt: ClientReceiptIn) -> JobDetail:
        """The buyer's signed receipt for a finished job's outputs."""
        return await self._send(self.core.send_receipt(job_id, receipt))

    async def finish_job(self, job_id: str, receipt: FinishIn) -> UsageAck:
        return await self._send(self.core.finish_job(job_id, receipt))

    # -- checkers --

    async def register_checker(
        self, registration: CheckerRegistration | None = None
    ) -> CheckerPublic:
        """Register (or refresh) this client's account as a checker."""
        return await self._send(self.checks.register_checker(registration or CheckerRegistration()))

    async def checker_tasks(self, wait_s: float = 20) -> TaskBatch:
        """This checker's open tasks; waits up to ``wait_s`` seconds for some."""
        return await self._send(self.checks.checker_tasks(wait_s))

    async def report_check(self, check_id: str, result: CheckResultIn) -> CheckResultAck:
        return await self._send(self.checks.report_check(check_id, result))

    async def check_output(self, check_id: str, sha256: str) -> bytes:
        """An output of the job a delivery check is about (for checkers on its panel)."""
        return await self._send(self.checks.check_output(check_id, sha256))

    async def list_checkers(self) -> CheckerList:
        return await self._send(self.checks.list_checkers())

    async def get_checker(self, address: str) -> CheckerPublic:
        return await self._send(self.checks.get_checker(address))

    async def node_checks(self, node_id: str, limit: int = 50) -> NodeChecks:
        """A node's latest checks with their votes, its reputation and its penalties."""
        return await self._send(self.checks.node_checks(node_id, limit))

    async def settlements(self, limit: int = 20) -> SettlementList:
        """Settled epochs, newest first: roots, totals, budget parts, chain status."""
        return await self._send(self.checks.settlements(limit))

    async def settlement(self, epoch: int) -> SettlementPublic:
        """One settled epoch (NotFoundError while it is not settled)."""
        return await self._send(self.checks.settlement(epoch))

    async def rewards(self, account: str) -> RewardClaims:
        """The account's reward claims, newest first, each with its Merkle proof."""
        return await self._send(self.checks.rewards(account))

    async def get_check(self, check_id: str) -> CheckPublic:
        return await self._send(self.checks.get_check(check_id))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.send(call.request)
        except httpx.TransportError as exc:
            raise self.core.unreachable(call.request, exc) from exc
        return call.parse(response)
