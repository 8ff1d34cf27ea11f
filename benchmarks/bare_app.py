"""A FastAPI app whose heartbeat route does nothing: the framework's own cost.

It answers the heartbeat path, so the very requests replayed against the indexer can
be replayed here, and the ratio of the two throughputs says how much of the budget the
indexer's own work (signature check, nonce, database write) takes.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.post("/v1/nodes/{node_id}/heartbeat")
async def heartbeat(node_id: str) -> dict[str, str]:
    return {"node_id": node_id}


@app.get("/v1/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
