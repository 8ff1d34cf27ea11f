"""The node's setup helpers: the check endpoint's socket and URL, and the job worker."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gpunet.errors import ConfigError
from gpunet.node.misbehave import Misbehaviour
from gpunet.node.setup import CheckServer, JobOptions, check_url, job_worker


def test_port_0_binds_a_free_port_and_advertises_it() -> None:
    with CheckServer("127.0.0.1", 0) as server:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}"


def test_a_taken_port_is_a_config_error_naming_the_option() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port}.*--check-port"):
            CheckServer("127.0.0.1", port)


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_an_unspecified_host_is_refused(host: str) -> None:
    with pytest.raises(ConfigError, match="give this machine's address"):
        CheckServer(host, 0)


def test_ipv6_urls_have_brackets() -> None:
    assert check_url("::1", 8080) == "http://[::1]:8080"
    assert check_url("node-1.example.org", 8080) == "http://node-1.example.org:8080"


def test_job_worker_gets_the_options_and_real_gpus(tmp_path: Path) -> None:
    options = JobOptions(tmp_path / "work", allow_network=True, keep_failed=True)
    lies = Misbehaviour(skip_fraction=0.5)

    worker = job_worker(object(), "n-0123456789ab", {}, 2, options, lies)  # type: ignore[arg-type]

    settings = worker.settings
    assert settings.gpu_devices == ("/dev/nvidia0", "/dev/nvidia1")
    assert (settings.allow_network, settings.keep_failed) == (True, True)
    assert settings.misbehaviour == lies
