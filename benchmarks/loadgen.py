"""A lean HTTP/1.1 load generator that replays pre-built requests over keep-alive connections.

It runs as its own process (``python benchmarks/loadgen.py ...``), apart from the
server under test, on uvloop with a bare ``asyncio.Protocol`` per connection, so it
spends a few microseconds per request and is not the ceiling (``null_server.py``
measures how far it goes). Requests come from a file of length-prefixed raw HTTP
requests (see ``write_requests``); each is sent once.

Modes:

- ``closed``: every connection sends its next request as soon as the previous answer
  is in. Throughput at saturation.
- ``open``: requests are due at a fixed rate whatever the answers; latency counts from
  the time a request was due, so a stalled server is not hidden by a client that waits
  for it (no coordinated omission).

The result is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import struct
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from time import perf_counter
from typing import cast

import uvloop

_LENGTH = struct.Struct(">I")
_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


def write_requests(path: Path, requests: Iterable[bytes]) -> int:
    """Store raw requests, each prefixed with its length; return how many."""
    count = 0
    with path.open("wb") as out:
        for request in requests:
            out.write(_LENGTH.pack(len(request)) + request)
            count += 1
    return count


def read_requests(path: Path) -> list[bytes]:
    data = path.read_bytes()
    requests, position = [], 0
    while position < len(data):
        (length,) = _LENGTH.unpack_from(data, position)
        position += _LENGTH.size
        requests.append(data[position : position + length])
        position += length
    return requests


def _body_length(head: bytes) -> int:
    lowered = head.lower() + b"\r\n"
    start = lowered.find(_CONTENT_LENGTH)
    if start < 0:
        raise ConnectionError("answer has no Content-Length; chunked answers are not supported")
    start += len(_CONTENT_LENGTH)
    return int(lowered[start : lowered.find(b"\r\n", start)])


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._buffer = bytearray()
        self._expected = -1
        self._waiter: asyncio.Future[int] | None = None
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    @property
    def open(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    def send(self, request: bytes) -> asyncio.Future[int]:
        """Write one request; the future resolves to the answer's status code."""
        assert self._transport is not None
        self._waiter = self._loop.create_future()
        self._transport.write(request)
        return self._waiter

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if self._expected < 0:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                return
            self._expected = end + 4 + _body_length(bytes(self._buffer[:end]))
        if len(self._buffer) >= self._expected:
            self._complete()

    def _complete(self) -> None:
        status = int(self._buffer[9:12])
        del self._buffer[: self._expected]
        self._expected = -1
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(status)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


@dataclass
class Tally:
    """Latencies of successful (2xx) answers, and what went wrong with the rest.

    Requests still unanswered when an open-loop run gives up count as ``unanswered``
    and keep the time they had waited, a lower bound, among the latencies.
    """

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    last_done: float = 0.0

    def record(self, outcome: int | str, latency: float, now: float) -> None:
        self.statuses[str(outcome)] += 1
        self.last_done = now
        if isinstance(outcome, int) and 200 <= outcome < 300:
            self.ok += 1
            self.latencies.append(latency)

    def record_unanswered(self, waited: float) -> None:
        self.statuses["unanswered"] += 1
        self.latencies.append(waited)


async def _connect(host: str, port: int, count: int) -> list[Connection]:
    loop = asyncio.get_running_loop()
    connections = []
    for _ in range(count):
        _, protocol = await loop.create_connection(lambda: Connection(loop), host, port)
        connections.append(protocol)
    return connections


async def _exchange(connection: Connection, request: bytes) -> int | str:
    try:
        return await connection.send(request)
    except ConnectionError:
        return "connection_error"


async def _closed_worker(
    connection: Connection, requests: Iterator[bytes], deadline: float, tally: Tally
) -> None:
    for request in requests:
        if not connection.open or perf_counter() > deadline:
            return
        start = perf_counter()
        outcome = await _exchange(connection, request)
        now = perf_counter()
        tally.record(outcome, now - start, now)


async def run_closed(
    connections: Sequence[Connection],
    requests: Sequence[bytes],
    duration_s: float,
    *,
    cycle: bool = False,
) -> tuple[Tally, float]:
    """Saturate: each connection sends back to back until requests or time run out.

    With ``cycle`` the requests are sent over and over (servers that ignore nonces).
    """
    tally, shared = Tally(), itertools.cycle(requests) if cycle else iter(requests)
    start = perf_counter()
    await asyncio.gather(
        *(_closed_worker(c, shared, start + duration_s, tally) for c in connections)
    )
    return tally, start


async def _open_one(
    idle: asyncio.Queue[Connection], request: bytes, due: float, tally: Tally
) -> None:
    connection = await idle.get()
    outcome = await _exchange(connection, request)
    now = perf_counter()
    tally.record(outcome, now - due, now)
    if connection.open:
        idle.put_nowait(connection)


async def run_open(
    connections: Sequence[Connection],
    requests: Sequence[bytes],
    rate: float,
    duration_s: float,
    drain_s: float,
) -> tuple[Tally, float]:
    """Send at ``rate`` per second; a request waits for a free connection if none is.

    Answers are awaited until ``drain_s`` after the last request was due; whatever is
    still out then is given up, so an overloaded server cannot stretch the run.
    """
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for connection in connections:
        idle.put_nowait(connection)
    tally, due_at = Tally(), dict[asyncio.Task[None], float]()
    start = perf_counter() + 0.01
    for index, request in enumerate(requests[: int(rate * duration_s)]):
        due = start + index / rate
        if due > perf_counter():
            await asyncio.sleep(due - perf_counter())
        due_at[asyncio.create_task(_open_one(idle, request, due, tally))] = due
    give_up = start + duration_s + drain_s
    _, pending = await asyncio.wait(due_at, timeout=max(0.0, give_up - perf_counter()))
    for task in pending:
        task.cancel()
        tally.record_unanswered(perf_counter() - due_at[task])
    return tally, start


def _percentile(ordered: Sequence[float], fraction: float) -> float:
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass(frozen=True)
class LoadResult:
    """What one run of the generator measured; latencies in seconds."""

    mode: str
    connections: int
    requests: int
    ok: int
    statuses: dict[str, int]
    elapsed_s: float
    throughput_per_s: float
    p50_s: float
    p90_s: float
    p99_s: float
    max_s: float
    generator_cpu_s: float

    @property
    def unanswered(self) -> int:
        """Requests given up on (open loop), as opposed to answered with an error."""
        return self.statuses.get("unanswered", 0)

    @property
    def failed(self) -> int:
        """Requests answered with a status other than 2xx, or whose connection broke."""
        return self.requests - self.ok - self.unanswered


def summarize(mode: str, connections: int, tally: Tally, start: float, cpu_s: float) -> LoadResult:
    ordered = sorted(tally.latencies)
    elapsed = max(tally.last_done - start, 1e-9)
    return LoadResult(
        mode=mode,
        connections=connections,
        requests=sum(tally.statuses.values()),
        ok=tally.ok,
        statuses=dict(tally.statuses),
        elapsed_s=elapsed,
        throughput_per_s=tally.ok / elapsed,
        p50_s=_percentile(ordered, 0.50),
        p90_s=_percentile(ordered, 0.90),
        p99_s=_percentile(ordered, 0.99),
        max_s=ordered[-1] if ordered else float("nan"),
        generator_cpu_s=cpu_s,
    )


async def _main(args: argparse.Namespace) -> LoadResult:
    requests = read_requests(args.requests)
    connections = await _connect(args.host, args.port, args.connections)
    warmup, timed = requests[: args.warmup], requests[args.warmup :]
    if warmup:
        await run_closed(connections, warmup, duration_s=60.0)
    cpu_start = time.process_time()
    if args.mode == "closed":
        tally, start = await run_closed(connections, timed, args.duration, cycle=args.cycle)
    else:
        tally, start = await run_open(connections, timed, args.rate, args.duration, args.drain)
    cpu = time.process_time() - cpu_start
    for connection in connections:
        connection.close()
    return summarize(args.mode, args.connections, tally, start, cpu)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True, help="length-prefixed file")
    parser.add_argument("--mode", choices=("closed", "open"), default="closed")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds, at most")
    parser.add_argument("--rate", type=float, default=1000.0, help="open mode: requests/s")
    parser.add_argument("--warmup", type=int, default=0, help="first N requests, untimed")
    parser.add_argument("--cycle", action="store_true", help="closed mode: reuse requests")
    parser.add_argument("--drain", type=float, default=5.0, help="open mode: wait at most S")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    result = uvloop.run(_main(parse_args(argv)))
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
