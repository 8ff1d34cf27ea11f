"""The forwarder's handshake rules and endpoint parsing, on socket pairs and loopback."""

from __future__ import annotations

import socket
import threading

import pytest

from gpunet.node import forward
from gpunet.node.forward import (
    MAX_LINE_BYTES,
    format_endpoint,
    open_tunnel,
    parse_endpoint,
    read_line,
    serve_forwarder,
)

TOKEN = "token-0123456789"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("203.0.113.7:40211", ("203.0.113.7", 40211)),
        ("node.example.org:22", ("node.example.org", 22)),
        ("[2001:db8::1]:443", ("2001:db8::1", 443)),
    ],
)
def test_endpoints_parse_and_format_back(endpoint: str, expected: tuple[str, int]) -> None:
    assert parse_endpoint(endpoint) == expected
    assert format_endpoint(*expected) == endpoint


@pytest.mark.parametrize("endpoint", ["", "host", "host:", ":80", "host:0", "host:70000", "h:x"])
def test_malformed_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError, match="host:port"):
        parse_endpoint(endpoint)


def test_read_line_returns_the_line_and_what_came_after() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GPUNET-SESSION abc\nrest of it")
        assert read_line(b) == (b"GPUNET-SESSION abc", b"rest of it")


def test_read_line_gives_up_on_a_line_without_end() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"x" * (MAX_LINE_BYTES + 10))
        assert read_line(b) == (None, b"")


def test_read_line_gives_up_on_a_silent_peer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "HANDSHAKE_TIMEOUT_S", 0.05)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"GPUNET-SESSION ")  # and then nothing
        assert read_line(b) == (None, b"")


def test_a_forwarder_needs_a_token() -> None:
    with pytest.raises(ValueError, match="token"):
        serve_forwarder("", 8888)


def test_an_oversized_greeting_is_refused() -> None:
    with serve_forwarder(TOKEN, 9) as forwarder:
        sock = socket.create_connection(forwarder.address, timeout=5)
        with sock:
            sock.sendall(b"GPUNET-SESSION " + b"a" * MAX_LINE_BYTES + b"\n")
            assert sock.recv(64) == b"ERR forbidden\n"


def test_a_silent_client_is_refused_after_the_handshake_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(forward, "HANDSHAKE_TIMEOUT_S", 0.05)
    with serve_forwarder(TOKEN, 9) as forwarder:
        sock = socket.create_connection(forwarder.address, timeout=5)
        with sock:
            assert sock.recv(64) == b"ERR forbidden\n"


def test_open_tunnel_raises_permission_error_for_a_wrong_token() -> None:
    with serve_forwarder(TOKEN, 9) as forwarder, pytest.raises(PermissionError, match="token"):
        open_tunnel(forwarder.address, "wrong")


def test_open_tunnel_keeps_bytes_the_workload_sends_first() -> None:
    # The workload speaks first (like an SSH server's banner): those bytes must reach
    # the caller through the tunnel, not be swallowed with the handshake reply.
    with socket.create_server(("127.0.0.1", 0)) as banner_server:

        def greet() -> None:
            conn, _ = banner_server.accept()
            with conn:
                conn.sendall(b"SSH-2.0-test\r\n")
                conn.recv(1)

        thread = threading.Thread(target=greet, daemon=True)
        thread.start()
        with serve_forwarder(TOKEN, banner_server.getsockname()[1]) as forwarder:
            tunnel = open_tunnel(forwarder.address, TOKEN)
            with tunnel:
                tunnel.settimeout(5)
                received = b""
                while not received.endswith(b"\r\n"):
                    received += tunnel.recv(64)
        thread.join(5)

    assert received == b"SSH-2.0-test\r\n"
