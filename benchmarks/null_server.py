"""An HTTP/1.1 server that answers every request with the same 200, as fast as it can.

Only for measuring the load generator's own ceiling: it parses just enough (the end
of the headers and Content-Length) to find where each request ends.
Run: ``python benchmarks/null_server.py PORT``.
"""

from __future__ import annotations

import asyncio
import sys
from typing import cast

import uvloop

_BODY = b'{"status":"ok"}'
_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(_BODY),
    _BODY,
)
_CONTENT_LENGTH = b"\r\ncontent-length:"


def _request_length(buffer: bytearray) -> int:
    """Bytes of the first complete request in ``buffer``, or 0 if it is not all in."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return 0
    head = bytes(buffer[:end]).lower() + b"\r\n"
    start = head.find(_CONTENT_LENGTH)
    body = 0
    if start >= 0:
        start += len(_CONTENT_LENGTH)
        body = int(head[start : head.find(b"\r\n", start)])
    total = end + 4 + body
    return total if len(buffer) >= total else 0


class NullProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while length := _request_length(self._buffer):
            del self._buffer[:length]
            assert self._transport is not None
            self._transport.write(_ANSWER)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(NullProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(serve(int(sys.argv[1])))
