"""Routes for operators of the indexer itself: health and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gpunet import __version__
from gpunet.api.models import Health
from gpunet.indexer import store
from gpunet.indexer.deps import Context, ReadSession
from gpunet.indexer.metrics import CONTENT_TYPE

router = APIRouter(tags=["operations"])


@router.get(
    "/v1/health",
    summary="Health",
    description="Answers when the indexer can reach its database; counts online nodes.",
    response_model=Health,
)
def health(session: ReadSession, context: Context) -> Health:
    online = store.count_online(session, context.liveness_cutoff(context.clock()))
    return Health(
        status="ok", version=__version__, database=context.database.dialect, nodes_online=online
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Prometheus text format: gpunet_nodes_online (counted at scrape time), "
        "gpunet_http_requests_total by method, route and status, and "
        "gpunet_http_request_duration_seconds by route."
    ),
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text"}},
)
def metrics(session: ReadSession, context: Context) -> Response:
    online = store.count_online(session, context.liveness_cutoff(context.clock()))
    context.metrics.nodes_online.set(online)
    return Response(context.metrics.render(), media_type=CONTENT_TYPE)
