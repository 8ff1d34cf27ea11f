"""The session port forwarder: a buyer reaches a port inside a session through the node.

A session's workload listens on ``127.0.0.1:<expose_port>`` inside the node. The node
puts a forwarder in front of it on an address buyers can reach, and only lets through
clients that know the session's token, which the indexer gives to the session's buyer
alone. The handshake is one line, so any TCP client can speak it::

    client                          forwarder                      workload
      | GPUNET-SESSION <token>\\n ->   |                                |
      |                               |-- token wrong or missing --> "ERR forbidden\\n", close
      |                               |-- token right: connect ------>|
      | <- OK\\n                       |                                |
      | <======== bytes both ways, until either side closes ========> |

A refused client never causes a connection to the workload. ``connect_local`` is the
buyer's end, like ``ssh -L``: it listens on a local port and runs the handshake for
every program that connects there, so that program needs to know nothing of gpunet.

Standard library only: one thread per direction of each connection, and a selector with
a wake-up pipe for the listening socket, so ``close()`` takes effect at once.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import selectors
import socket
import threading
from collections.abc import Callable

log = logging.getLogger("gpunet.node.forward")

GREETING = b"GPUNET-SESSION "
OK_REPLY = b"OK\n"
FORBIDDEN_REPLY = b"ERR forbidden\n"
UNAVAILABLE_REPLY = b"ERR unavailable\n"
HANDSHAKE_TIMEOUT_S = 5.0
CONNECT_TIMEOUT_S = 10.0
MAX_LINE_BYTES = 512  # a greeting and a token of up to a few hundred characters
MAX_CONNECTIONS = 256
CHUNK_BYTES = 64 * 1024

Handler = Callable[[socket.socket], None]


class _Listener:
    """Accepts connections on one socket and hands each to ``handle`` in its own thread.

    Tracks the open connections so that ``close()`` ends them too.
    """

    def __init__(self, sock: socket.socket, handle: Handler, name: str) -> None:
        self._sock = sock
        self._handle = handle
        self._name = name
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._closed = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._accept_loop, name=name, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")
        self._thread.join(timeout=5)
        with self._lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            # close() alone would not wake a thread blocked in recv() on it, nor tell
            # the peer; shutdown() does both.
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            _close(conn)

    def track(self, conn: socket.socket) -> bool:
        """Count ``conn`` as open; False when closed or full (the caller drops it)."""
        with self._lock:
            if self._closed.is_set() or len(self._open) >= MAX_CONNECTIONS:
                return False
            self._open.add(conn)
            return True

    def untrack(self, *conns: socket.socket) -> None:
        with self._lock:
            for conn in conns:
                self._open.discard(conn)

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._sock, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._closed.is_set():
                ready = {key.fileobj for key, _ in selector.select()}
                if self._wake_r in ready or self._closed.is_set():
                    break
                self._accept_one()
        for sock in (self._sock, self._wake_r, self._wake_w):
            _close(sock)

    def _accept_one(self) -> None:
        try:
            conn, _ = self._sock.accept()
        except OSError:
            return
        if not self.track(conn):
            log.warning("%s: too many open connections; dropping a new one", self._name)
            _close(conn)
            return
        threading.Thread(target=self._serve, args=(conn,), name=self._name, daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self._handle(conn)
        except OSError as exc:
            log.debug("%s: connection ended with %s", self._name, exc)
        finally:
            self.untrack(conn)
            _close(conn)


class Forwarder:
    """A running forwarder; ``endpoint`` is what the node reports as the session's address."""

    def __init__(self, token: str, target: tuple[str, int], sock: socket.socket) -> None:
        self._token = token.encode()
        self._target = target
        self._listener = _Listener(sock, self._handle, f"forward-{target[1]}")
        self._listener.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._listener.address

    @property
    def endpoint(self) -> str:
        return format_endpoint(*self.address)

    def close(self) -> None:
        """Stop accepting, and end every open connection."""
        self._listener.close()

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _handle(self, client: socket.socket) -> None:
        accepted, rest = self._check_greeting(client)
        if not accepted:
            client.sendall(FORBIDDEN_REPLY)
            return
        try:
            target = socket.create_connection(self._target, timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            log.warning(
                "session target %s is not answering (%s)", format_endpoint(*self._target), exc
            )
            client.sendall(UNAVAILABLE_REPLY)
            return
        if not self._listener.track(target):
            _close(target)
            return
        try:
            client.sendall(OK_REPLY)
            if rest:
                target.sendall(rest)
            splice(client, target)
        finally:
            self._listener.untrack(target)
            _close(target)

    def _check_greeting(self, client: socket.socket) -> tuple[bool, bytes]:
        """Whether ``client`` presented the token, and any bytes it sent after the line."""
        line, rest = read_line(client)
        if line is None or not line.startswith(GREETING):
            return False, b""
        given = line[len(GREETING) :].rstrip(b"\r")
        return hmac.compare_digest(given, self._token), rest


def serve_forwarder(
    token: str,
    target_port: int,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    target_host: str = "127.0.0.1",
) -> Forwarder:
    """Listen on ``host:port`` (0: any free port) and forward clients with ``token``."""
    if not token:
        raise ValueError("a session forwarder needs a non-empty token")
    sock = socket.create_server((host, port), family=_family(host), backlog=128)
    forwarder = Forwarder(token, (target_host, target_port), sock)
    log.info("forwarding session port %d on %s", target_port, format_endpoint(*forwarder.address))
    return forwarder


def connect_local(
    endpoint: str,
    token: str,
    local_port: int,
    stop: threading.Event,
    *,
    local_host: str = "127.0.0.1",
    ready: Callable[[tuple[str, int]], None] | None = None,
) -> None:
    """Listen on ``local_host:local_port`` and tunnel each connection to a session.

    Each local connection gets its own connection to ``endpoint`` (a forwarder), which
    is handed the token before any of the local program's bytes. Returns once ``stop``
    is set. ``ready`` is called with the bound address (useful with ``local_port=0``).
    """
    remote = parse_endpoint(endpoint)
    sock = socket.create_server((local_host, local_port), family=_family(local_host))

    def handle(local: socket.socket) -> None:
        try:
            tunnel = open_tunnel(remote, token)
        except OSError as exc:
            log.warning("cannot open a tunnel to the session: %s", exc)
            return
        try:
            splice(local, tunnel)
        finally:
            _close(tunnel)

    listener = _Listener(sock, handle, f"tunnel-{endpoint}")
    listener.start()
    if ready is not None:
        ready(listener.address)
    try:
        stop.wait()
    finally:
        listener.close()


def open_tunnel(remote: tuple[str, int], token: str) -> socket.socket:
    """A connection to the forwarder at ``remote`` that has passed the handshake.

    Raises ``PermissionError`` when the forwarder refuses the token, ``ConnectionError``
    when it cannot reach the session's workload.
    """
    sock = socket.create_connection(remote, timeout=CONNECT_TIMEOUT_S)
    try:
        sock.sendall(GREETING + token.encode() + b"\n")
        reply = _read_reply(sock)
    except OSError:
        _close(sock)
        raise
    if reply == OK_REPLY.rstrip(b"\n"):
        sock.settimeout(None)
        return sock
    _close(sock)
    shown = reply.decode(errors="replace") if reply is not None else "no answer"
    if reply == FORBIDDEN_REPLY.rstrip(b"\n"):
        raise PermissionError(f"the session at {format_endpoint(*remote)} refused the token")
    raise ConnectionError(f"the session at {format_endpoint(*remote)} answered {shown!r}")


def read_line(sock: socket.socket) -> tuple[bytes | None, bytes]:
    """One ``\\n``-ended line (without it) and the bytes read past it.

    None when the peer sends no full line within the timeout and length bound.
    """
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    buffer = b""
    try:
        while b"\n" not in buffer and len(buffer) <= MAX_LINE_BYTES:
            chunk = sock.recv(MAX_LINE_BYTES + 1 - len(buffer))
            if not chunk:
                return None, b""
            buffer += chunk
    except (TimeoutError, OSError):
        return None, b""
    line, newline, rest = buffer.partition(b"\n")
    if not newline:
        return None, b""
    sock.settimeout(None)
    return line, rest


def _read_reply(sock: socket.socket) -> bytes | None:
    # One byte at a time: the workload may speak first (an SSH banner), and its bytes
    # right after the reply belong to the local program, not to us.
    sock.settimeout(HANDSHAKE_TIMEOUT_S)
    line = b""
    while len(line) <= MAX_LINE_BYTES:
        byte = sock.recv(1)
        if not byte:
            return None
        if byte == b"\n":
            return line
        line += byte
    return None


def splice(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until both directions have ended; half-closes pass through."""
    a.settimeout(None)
    b.settimeout(None)
    back = threading.Thread(target=_pump, args=(b, a), name="splice", daemon=True)
    back.start()
    _pump(a, b)
    back.join()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(CHUNK_BYTES):
            sink.sendall(chunk)
    except OSError:
        # A reset or a socket closed under us: end both directions, not just this one.
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        return
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def parse_endpoint(endpoint: str) -> tuple[str, int]:
    """``"host:port"`` or ``"[v6]:port"`` -> ``(host, port)``; ValueError when malformed."""
    host, sep, port = endpoint.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"session endpoint {endpoint!r} is not host:port, like 203.0.113.7:40211")
    return host, int(port)


def format_endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
