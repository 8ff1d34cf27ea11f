"""Route of the offer search."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from gpunet.api.models import OfferList
from gpunet.indexer.deps import Context, ReadSession
from gpunet.indexer.error_handlers import ERROR_RESPONSES
from gpunet.indexer.offer_search import OfferOrder, search_offers
from gpunet.indexer.views import offer_public
from gpunet.protocol.query import MAX_FILTER_LENGTH, parse_filter

router = APIRouter(prefix="/v1/offers", tags=["offers"], responses=ERROR_RESPONSES)

WHERE_HELP = (
    "Filter terms `field op value`, separated by spaces, all of which must hold, like "
    "`gpu=H100,A100-80GB count>=2 price<2.5 region=eu`. Fields: gpu, count, vram (GiB as "
    "named), price (USD per GPU-hour), region (matches subregions), tflops (FP16, whole "
    "node), cpu, ram (GiB), disk (GiB), state, operator."
)


@router.get(
    "",
    summary="Search offers of online nodes",
    description=(
        "Offers of nodes that are online now (not offline, heartbeat within the timeout), "
        "filtered by `where` and sorted by `order` (ties by node id). `total` counts the "
        "matches on all pages up to 10,000; when more match, `total_is_exact` is false. "
        "A filter that does not parse answers 400 naming the term."
    ),
    response_model=OfferList,
)
def list_offers(
    session: ReadSession,
    context: Context,
    where: Annotated[
        str, Query(max_length=MAX_FILTER_LENGTH, description=WHERE_HELP, examples=["price<2.5"])
    ] = "",
    order: Annotated[OfferOrder, Query(description="sort key; - sorts descending")] = "price",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OfferList:
    conditions = parse_filter(where)
    cutoff = context.liveness_cutoff(context.clock())
    page = search_offers(session, conditions, cutoff=cutoff, order=order, limit=limit)
    return OfferList(
        offers=[offer_public(n) for n in page.nodes],
        total=page.total,
        total_is_exact=page.total_is_exact,
    )
