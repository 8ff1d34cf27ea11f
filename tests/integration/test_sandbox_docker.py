"""Jobs in real Docker containers, where a Docker engine answers.

Most hosts that run the test suite have no engine (CI included), so these tests skip
with the engine's own answer; the exact ``docker run`` line is covered by unit tests.
The image is small and common; ``GPUNET_TEST_DOCKER_IMAGE`` picks another one.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from gpunet.node.runtime import DockerRuntime, Limits, Outcome, RunRequest, RunResult

pytestmark = [pytest.mark.docker, pytest.mark.slow]

IMAGE = os.environ.get("GPUNET_TEST_DOCKER_IMAGE", "busybox:1.36")


@pytest.fixture(scope="module")
def runtime() -> DockerRuntime:
    docker = DockerRuntime()
    reason = docker.available()
    if reason is not None:
        pytest.skip(f"no usable Docker engine: {reason}")
    pulled = subprocess.run(
        ["docker", "pull", "--quiet", IMAGE], capture_output=True, text=True, check=False
    )
    if pulled.returncode != 0:
        pytest.skip(f"cannot pull {IMAGE}: {pulled.stderr.strip()[:200]}")
    return docker


def run(
    runtime: DockerRuntime, workdir: Path, *argv: str, limits: Limits | None = None
) -> tuple[RunResult, list[tuple[str, str]]]:
    lines: list[tuple[str, str]] = []
    request = RunRequest(argv=argv, workdir=workdir, env={}, limits=limits or Limits(), image=IMAGE)

    def collect(stream: str, line: str) -> None:
        lines.append((stream, line))

    return runtime.run(request, collect, threading.Event()), lines


def test_a_container_job_writes_its_output_to_work(runtime: DockerRuntime, tmp_path: Path) -> None:
    result, lines = run(runtime, tmp_path, "sh", "-c", "echo 42 > /work/out.txt; echo done")
    assert result.outcome is Outcome.SUCCEEDED, result.message
    assert (tmp_path / "out.txt").read_text(encoding="utf-8") == "42\n"
    assert ("stdout", "done") in lines


def test_a_container_has_no_network_and_a_read_only_root(
    runtime: DockerRuntime, tmp_path: Path
) -> None:
    result, lines = run(runtime, tmp_path, "sh", "-c", "touch /x || echo refused; ip link")
    assert ("stdout", "refused") in lines
    assert not any("eth0" in line for _, line in lines)
    assert result.outcome is Outcome.SUCCEEDED, result.message


def test_a_container_past_wall_time_is_killed(runtime: DockerRuntime, tmp_path: Path) -> None:
    result, _ = run(runtime, tmp_path, "sleep", "600", limits=Limits(wall_time_s=3.0))
    assert result.outcome is Outcome.TIMED_OUT
    names = subprocess.run(
        ["docker", "ps", "--filter", "label=gpunet.job", "--format", "{{.Command}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "sleep 600" not in names.stdout
