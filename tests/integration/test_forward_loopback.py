"""The session forwarder on loopback, with a real echo server standing in for the workload."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from gpunet.node.forward import Forwarder, connect_local, serve_forwarder

TOKEN = "s3cr3t-session-token-0123456789abcdef"
TIMEOUT_S = 10.0


class EchoServer:
    """Echoes every byte back; counts connections and notices when a client hangs up."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.hung_up = threading.Event()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.accepted += 1
                self._conns.append(conn)
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                return
        self.hung_up.set()

    def drop_all(self) -> None:
        """Close every accepted connection from the server's side."""
        with self._lock:
            for conn in self._conns:
                conn.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


@pytest.fixture
def forwarder(echo: EchoServer) -> Iterator[Forwarder]:
    with serve_forwarder(TOKEN, echo.port) as running:
        yield running


def dial(forwarder: Forwarder, greeting: bytes) -> tuple[socket.socket, bytes]:
    """Connect, send ``greeting``, return the socket and the forwarder's reply line."""
    sock = socket.create_connection(forwarder.address, timeout=TIMEOUT_S)
    sock.sendall(greeting)
    return sock, read_line(sock)


def read_line(sock: socket.socket) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return line


def served(forwarder: Forwarder) -> bool:
    """One client with the right token gets its bytes echoed (the workload saw it)."""
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
    with sock:
        sock.sendall(b"ping")
        return reply == b"OK\n" and recv_exactly(sock, 4) == b"ping"


def hung_up(sock: socket.socket) -> bool:
    """Whether the peer closed: an orderly end, or a reset when our bytes went unread."""
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def test_right_token_round_trips_bytes(forwarder: Forwarder, echo: EchoServer) -> None:
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
    with sock:
        assert reply == b"OK\n"
        payload = bytes(range(256)) * 1000
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
    assert echo.accepted == 1
    assert forwarder.endpoint == f"127.0.0.1:{forwarder.address[1]}"


def test_bytes_sent_with_the_greeting_reach_the_workload(forwarder: Forwarder) -> None:
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\nearly bytes".encode())
    with sock:
        assert reply == b"OK\n"
        assert recv_exactly(sock, len(b"early bytes")) == b"early bytes"


@pytest.mark.parametrize(
    "greeting",
    [
        b"GPUNET-SESSION wrong-token\n",
        b"GPUNET-SESSION \n",
        f"GPUNET-SESSION {TOKEN}x\n".encode(),
        b"GET / HTTP/1.1\n",
        b"\n",
    ],
    ids=["wrong", "empty", "longer", "http", "blank"],
)
def test_wrong_or_missing_token_is_refused_without_touching_the_workload(
    forwarder: Forwarder, echo: EchoServer, greeting: bytes
) -> None:
    sock, reply = dial(forwarder, greeting)
    with sock:
        assert reply == b"ERR forbidden\n"
        assert sock.recv(1) == b""  # closed by the forwarder

    # Connections reach the echo server in order: after a good client is served, the
    # count shows whether the refused one ever got through.
    assert served(forwarder)
    assert echo.accepted == 1


def test_a_client_that_closes_without_a_greeting_never_reaches_the_workload(
    forwarder: Forwarder, echo: EchoServer
) -> None:
    socket.create_connection(forwarder.address, timeout=TIMEOUT_S).close()

    assert served(forwarder)
    assert echo.accepted == 1


def test_many_clients_at_once(forwarder: Forwarder, echo: EchoServer) -> None:
    def session(index: int) -> bytes:
        sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
        with sock:
            assert reply == b"OK\n"
            payload = f"client {index} ".encode() * 500
            sock.sendall(payload)
            return recv_exactly(sock, len(payload))

    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(session, range(64)))

    assert answers == [f"client {i} ".encode() * 500 for i in range(64)]
    assert echo.accepted == 64


def test_a_client_hanging_up_closes_the_workload_side(
    forwarder: Forwarder, echo: EchoServer
) -> None:
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
    assert reply == b"OK\n"
    sock.sendall(b"x")
    assert recv_exactly(sock, 1) == b"x"

    sock.close()

    assert echo.hung_up.wait(TIMEOUT_S)


def test_the_workload_hanging_up_closes_the_client(forwarder: Forwarder, echo: EchoServer) -> None:
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
    with sock:
        assert reply == b"OK\n"
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"

        echo.drop_all()

        assert sock.recv(1) == b""


def test_closing_the_forwarder_ends_open_connections(echo: EchoServer) -> None:
    forwarder = serve_forwarder(TOKEN, echo.port)
    address = forwarder.address
    sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
    with sock:
        assert reply == b"OK\n"

        forwarder.close()

        assert sock.recv(1) == b""
    with pytest.raises(OSError):
        socket.create_connection(address, timeout=TIMEOUT_S).close()


def test_an_unreachable_workload_is_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]  # free once closed: nothing listens there
    with serve_forwarder(TOKEN, port) as forwarder:
        sock, reply = dial(forwarder, f"GPUNET-SESSION {TOKEN}\n".encode())
        sock.close()

    assert reply == b"ERR unavailable\n"


# -- connect_local, the buyer's end --


class LocalTunnel:
    def __init__(self, endpoint: str, token: str) -> None:
        self.stop = threading.Event()
        ready = threading.Event()
        self.address: tuple[str, int] = ("", 0)

        def on_ready(address: tuple[str, int]) -> None:
            self.address = address
            ready.set()

        self.thread = threading.Thread(
            target=connect_local,
            args=(endpoint, token, 0, self.stop),
            kwargs={"ready": on_ready},
            daemon=True,
        )
        self.thread.start()
        assert ready.wait(TIMEOUT_S)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(TIMEOUT_S)
        assert not self.thread.is_alive()


def test_connect_local_tunnels_a_plain_client(forwarder: Forwarder, echo: EchoServer) -> None:
    tunnel = LocalTunnel(forwarder.endpoint, TOKEN)
    try:
        for index in range(3):
            with socket.create_connection(tunnel.address, timeout=TIMEOUT_S) as sock:
                sock.sendall(f"hello {index}".encode())
                assert recv_exactly(sock, 7) == f"hello {index}".encode()
    finally:
        tunnel.close()
    assert echo.accepted == 3
    with pytest.raises(OSError):
        socket.create_connection(tunnel.address, timeout=TIMEOUT_S).close()


def test_connect_local_with_a_wrong_token_gets_nothing_through(
    forwarder: Forwarder, echo: EchoServer
) -> None:
    tunnel = LocalTunnel(forwarder.endpoint, "not-the-token")
    try:
        with socket.create_connection(tunnel.address, timeout=TIMEOUT_S) as sock:
            sock.sendall(b"hello")
            assert hung_up(sock)
    finally:
        tunnel.close()
    assert echo.accepted == 0
