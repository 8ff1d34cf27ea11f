"""Routes of the node registry: register, heartbeat, leave, list and show.

The signed routes are async: the signature is checked on the event loop and the
nonce and the change are written in one transaction off it (``SignedWrite.apply``),
so a request makes a single trip to the store's writer and none to the thread pool.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Body, Query, Response, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Connection

from gpunet.api.models import HeartbeatAck, HeartbeatIn, NodeList, NodePublic, NodeRegistration
from gpunet.errors import NotFoundError
from gpunet.indexer import jobs, registry, store
from gpunet.indexer.database import session_on
from gpunet.indexer.deps import Context, ReadSession, Signed
from gpunet.indexer.error_handlers import ERROR_RESPONSES, SIGNED_ERROR_RESPONSES
from gpunet.indexer.rules import job_rules
from gpunet.indexer.signing import SIGNED_OPENAPI
from gpunet.indexer.views import node_public
from gpunet.protocol.nodes import NodeState
from gpunet.protocol.offers import validate_node_id

router = APIRouter(prefix="/v1/nodes", tags=["nodes"], responses=ERROR_RESPONSES)

ADDRESS_PATTERN = re.compile(r"^0x[0-9a-fA-F]{40}$")


class LeaveIn(BaseModel):
    """Body of ``POST /v1/nodes/{node_id}/leave``: empty, or an empty object."""

    model_config = ConfigDict(extra="forbid")


@router.put(
    "/{node_id}",
    summary="Register or update a node",
    description=(
        "Signed. Creates the node (201) with the signer as its operator, or updates its "
        "claim and offer (200) when the signer already operates it; another operator's "
        "node answers 403. Registering counts as a heartbeat."
    ),
    response_model=NodePublic,
    responses={**SIGNED_ERROR_RESPONSES, 201: {"description": "Node created"}},
    openapi_extra=SIGNED_OPENAPI,
)
async def register_node(
    node_id: str,
    registration: NodeRegistration,
    signed: Signed,
    context: Context,
    response: Response,
) -> NodePublic:
    now = context.clock()
    timeout = context.settings.heartbeat_timeout_s

    def change(connection: Connection) -> tuple[NodePublic, bool]:
        with session_on(connection) as session:
            record, created = registry.register_node(
                session, node_id, signed.address, registration, now
            )
            # A node registers when its agent starts: work it held before is lost.
            jobs.requeue_jobs_of_node(
                session, node_id, f"node {node_id} restarted", now, job_rules(context.settings)
            )
            record.state = NodeState.IDLE.value
            return node_public(record, now, timeout), created

    public, created = await signed.apply(change)
    context.dispatch.wake_matcher()
    response.status_code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
    return public


@router.post(
    "/{node_id}/heartbeat",
    summary="Report that a node is alive",
    description=(
        "Signed by the node's operator. An offline node comes back idle. Unknown nodes "
        "answer 404: the agent should register again."
    ),
    response_model=HeartbeatAck,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def heartbeat(
    node_id: str, beat: HeartbeatIn, signed: Signed, context: Context
) -> HeartbeatAck:
    now = context.clock()
    state = await signed.apply(
        partial(
            registry.record_heartbeat, node_id=node_id, operator=signed.address, beat=beat, now=now
        )
    )
    return HeartbeatAck(
        node_id=node_id, state=state, next_heartbeat_s=context.settings.heartbeat_interval_s
    )


@router.post(
    "/{node_id}/leave",
    summary="Take a node offline",
    description="Signed by the node's operator, on a clean agent shutdown. Body: none or {}.",
    response_model=NodePublic,
    responses=SIGNED_ERROR_RESPONSES,
    openapi_extra=SIGNED_OPENAPI,
)
async def leave(
    node_id: str,
    signed: Signed,
    context: Context,
    _body: Annotated[LeaveIn | None, Body()] = None,
) -> NodePublic:
    now = context.clock()
    timeout = context.settings.heartbeat_timeout_s

    def change(connection: Connection) -> NodePublic:
        with session_on(connection) as session:
            record = registry.leave(session, node_id, signed.address)
            return node_public(record, now, timeout)

    return await signed.apply(change)


@router.get(
    "",
    summary="List nodes",
    description=(
        "Nodes by id. `state` filters by the state under the liveness rule (a node "
        "silent past the timeout is offline); `total` counts all pages."
    ),
    response_model=NodeList,
)
def list_nodes(
    session: ReadSession,
    context: Context,
    state: Annotated[NodeState | None, Query(description="idle, busy or offline")] = None,
    operator: Annotated[
        str | None, Query(pattern=ADDRESS_PATTERN.pattern, description="operator address")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> NodeList:
    now = context.clock()
    page = store.list_nodes(
        session,
        cutoff=context.liveness_cutoff(now),
        state=state,
        operator=operator,
        limit=limit,
        offset=offset,
    )
    timeout = context.settings.heartbeat_timeout_s
    return NodeList(nodes=[node_public(n, now, timeout) for n in page.nodes], total=page.total)


@router.get(
    "/{node_id}",
    summary="Show one node",
    description="The node's claim, offer and state under the liveness rule.",
    response_model=NodePublic,
)
def get_node(node_id: str, session: ReadSession, context: Context) -> NodePublic:
    record = store.get_node(session, validate_node_id(node_id))
    if record is None:
        raise NotFoundError(f"node {node_id} is not registered")
    return node_public(record, context.clock(), context.settings.heartbeat_timeout_s)
