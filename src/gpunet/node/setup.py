"""The parts of ``gpunet node start`` beside the two loops: the check endpoint's server
thread, and the job worker built from the operator's options.

The check endpoint listens on a socket bound before the node registers, so the port
(``--check-port 0``: any free one) and the ``check_url`` to advertise are known when the
registration is built; uvicorn then serves it in a daemon thread until the node stops.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpunet.errors import ConfigError
from gpunet.node.misbehave import HONEST, Misbehaviour

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from starlette.types import ASGIApp

    from gpunet.api.models import NodeRegistration
    from gpunet.node.reporting import WorkApi
    from gpunet.node.runtime import Runtime
    from gpunet.node.worker import JobWorker

UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::", ""})
START_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 64  # checkers are a handful per epoch; more is someone flooding it


@dataclass(frozen=True)
class JobOptions:
    """What the operator decided about the jobs this node runs."""

    work_dir: Path
    allow_network: bool = False
    session_host: str = "127.0.0.1"
    keep_failed: bool = False
    checkpoint_every_s: float = 10.0


def job_worker(
    client: WorkApi,
    node_id: str,
    runtimes: dict[str, Runtime],
    gpu_count: int,
    options: JobOptions,
    misbehaviour: Misbehaviour = HONEST,
) -> JobWorker:
    """The job loop for this node, its GPUs bound as ``/dev/nvidia0`` ... upwards."""
    from gpunet.node.worker import JobWorker

    return JobWorker(
        client,
        node_id,
        runtimes,
        options.work_dir,
        allow_network=options.allow_network,
        session_host=options.session_host,
        gpu_devices=tuple(f"/dev/nvidia{i}" for i in range(gpu_count)),
        keep_failed=options.keep_failed,
        checkpoint_every_s=options.checkpoint_every_s,
        misbehaviour=misbehaviour,
    )


def serve_checks(
    server: CheckServer,
    node_id: str,
    operator: LocalAccount,
    registration: NodeRegistration,
    worker: JobWorker,
    misbehaviour: Misbehaviour = HONEST,
) -> None:
    """Serve the node's check endpoint, sized by the node's registered claim.

    A GPU node's prover is made now: torch is loaded already (the benchmark used it),
    and a first challenge must not pay for CUDA's start. A CPU node proves with NumPy,
    so it never imports torch.
    """
    from gpunet.node.capacity import CapacityProver
    from gpunet.node.check_server import CheckService, check_app, limits_for_claim

    has_gpus = registration.hardware.gpu_count > 0
    service = CheckService(
        node_id,
        operator,
        limits_for_claim(registration.hardware),
        prover=CapacityProver("auto" if has_gpus else "numpy"),
        running_job=lambda: worker.running_job is not None,
        misbehaviour=misbehaviour,
    )
    server.start(check_app(service))


class CheckServer:
    """An ASGI app on a socket of its own, served by uvicorn in a daemon thread.

    The socket is bound when the server is made, so the port (0: a free one) and the
    ``url`` to advertise are known before the node registers; ``start`` serves.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = bind_listener(host, port)
        self.port: int = self._socket.getsockname()[1]
        self.url = check_url(host, self.port)
        self._server: Any = None  # uvicorn.Server, imported only when serving
        self._thread: threading.Thread | None = None

    def start(self, app: ASGIApp, timeout_s: float = START_TIMEOUT_S) -> None:
        """Serve ``app``; returns once uvicorn listens, ConfigError if it does not."""
        import uvicorn

        config = uvicorn.Config(
            app,
            log_config=None,  # leave the agent's logging as the agent set it
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=2,
            limit_concurrency=MAX_CONNECTIONS,  # beyond it uvicorn answers 503
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [self._socket]}, name="check-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the check endpoint did not start at {self.url}; see the log")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving and close the socket; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self._socket.close()

    def __enter__(self) -> CheckServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ConfigError says what to change."""
    if host in UNSPECIFIED_HOSTS:
        raise ConfigError(
            f"--check-host {host!r} is where the node listens and what it advertises, so "
            "checkers must be able to connect to it; give this machine's address instead"
        )
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen for checks on {host} port {port} ({exc}); "
            "pick another --check-port (0: any free port) or --check-host"
        ) from exc


def check_url(host: str, port: int) -> str:
    """``http://host:port``, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
