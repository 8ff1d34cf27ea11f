"""The Docker runtime: the exact ``docker run`` line, and runs against a scripted client."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from gpunet.errors import ValidationError
from gpunet.node.runtime.base import Limits, Outcome, RunRequest, RunResult
from gpunet.node.runtime.docker import DockerRuntime, gpu_option

MIB = 1024 * 1024


def request(workdir: Path, **changes: object) -> RunRequest:
    fields: dict[str, object] = {
        "argv": ("python", "train.py", "--epochs", "2"),
        "workdir": workdir,
        "env": {"SEED": "7"},
        "limits": Limits(cpu_cores=2, memory_mib=512, wall_time_s=60, max_processes=100),
        "image": "python:3.11-slim",
    }
    fields.update(changes)
    return RunRequest(**fields)  # type: ignore[arg-type]


def fake_docker(directory: Path, script: str) -> Path:
    """A stand-in ``docker`` that logs its arguments to ``calls.log`` and runs ``script``."""
    path = directory / "docker"
    log = directory / "calls.log"
    path.write_text(f'#!/bin/sh\necho "$@" >> {log}\n{script}\n', encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def calls(directory: Path) -> list[str]:
    log = directory / "calls.log"
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def test_command_line_is_exactly_the_sandboxed_docker_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    command = DockerRuntime().command(request(tmp_path), "gpunet-abc")
    assert command == [
        "docker", "run", "--rm", "--name", "gpunet-abc", "--label", "gpunet.job=1",
        "--init", "--hostname", "gpunet-job",
        "--network", "none",
        "--memory", "512m", "--memory-swap", "512m",
        "--cpus", "2",
        "--pids-limit", "100",
        "--ulimit", f"fsize={1024 * MIB}:{1024 * MIB}",
        "--ulimit", "cpu=120:125",
        "--ulimit", "core=0:0",
        "--read-only", "--tmpfs", "/tmp:rw,nosuid,nodev,size=256m", "--shm-size", "256m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "-v", f"{tmp_path}:/work", "-w", "/work",
        "--user", "65534:65534",
        "-e", "HOME=/tmp", "-e", "LANG=C.UTF-8", "-e", "OMP_NUM_THREADS=2",
        "-e", "PYTHONUNBUFFERED=1", "-e", "SEED=7",
        "python:3.11-slim", "python", "train.py", "--epochs", "2",
    ]  # fmt: skip


def test_network_and_gpus_only_when_asked(tmp_path: Path) -> None:
    limits = Limits(network=True)
    command = DockerRuntime(docker="/opt/docker").command(
        request(tmp_path, limits=limits, gpu_devices=("/dev/nvidia1", "/dev/nvidiactl")), "c"
    )
    assert command[0] == "/opt/docker"
    assert "--network" not in command
    assert command[command.index("--gpus") + 1] == '"device=1"'


def test_gpu_option_names_the_devices_or_all() -> None:
    assert gpu_option(("/dev/nvidia0", "/dev/nvidia3", "/dev/nvidia-uvm")) == '"device=0,3"'
    assert gpu_option(("/dev/nvidiactl",)) == "all"


def test_as_a_user_the_container_runs_as_that_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(os, "getuid", lambda: 1000)
    monkeypatch.setattr(os, "getgid", lambda: 1001)
    command = DockerRuntime().command(request(tmp_path), "c")
    assert command[command.index("--user") + 1] == "1000:1001"


@pytest.mark.parametrize("image", [None, "", "--privileged"])
def test_an_image_is_required(tmp_path: Path, image: str | None) -> None:
    with pytest.raises(ValidationError, match="image"):
        DockerRuntime().command(request(tmp_path, image=image), "c")


def test_available_says_why_without_an_engine(tmp_path: Path) -> None:
    assert "not found on PATH" in str(DockerRuntime(docker=str(tmp_path / "none")).available())
    down = fake_docker(tmp_path, "echo 'Cannot connect to the Docker daemon' >&2; exit 1")
    assert DockerRuntime(docker=str(down)).available() == (
        f"no Docker engine answers `{down} info`: Cannot connect to the Docker daemon"
    )
    up = fake_docker(tmp_path, "echo 27.3.1")
    assert DockerRuntime(docker=str(up)).available() is None


def _run(
    tmp_path: Path, script: str, cancel: threading.Event | None = None
) -> tuple[RunResult, list[tuple[str, str]]]:
    docker = fake_docker(tmp_path, script)
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    lines: list[tuple[str, str]] = []
    result = DockerRuntime(docker=str(docker)).run(
        request(work),
        lambda stream, line: lines.append((stream, line)),
        cancel or threading.Event(),
    )
    return result, lines


def test_run_streams_output_and_succeeds(tmp_path: Path) -> None:
    result, lines = _run(tmp_path, 'echo "epoch 1"; echo "warn" >&2; exit 0')
    assert result.outcome is Outcome.SUCCEEDED
    assert ("stdout", "epoch 1") in lines and ("stderr", "warn") in lines
    assert calls(tmp_path)[0].startswith("run --rm --name gpunet-")


@pytest.mark.parametrize(
    ("script", "outcome", "words"),
    [
        ("exit 3", Outcome.FAILED, "exited with status 3"),
        ("echo 'docker: Error response from daemon: no such image' >&2; exit 125",
         Outcome.SANDBOX_ERROR, "no such image"),
        ("exit 137", Outcome.MEMORY_EXCEEDED, "out-of-memory killer"),
        ("echo MemoryError >&2; exit 1", Outcome.MEMORY_EXCEEDED, "inferred"),
        ("exit 152", Outcome.CPU_TIME_EXCEEDED, "SIGXCPU"),
    ],
)  # fmt: skip
def test_run_classifies_how_the_container_ended(
    tmp_path: Path, script: str, outcome: Outcome, words: str
) -> None:
    result, _ = _run(tmp_path, script)
    assert result.outcome is outcome
    assert words in result.message


def test_cancel_kills_the_container_by_its_name(tmp_path: Path) -> None:
    cancel = threading.Event()
    # The fake client runs until `docker kill` (the same script) leaves a mark.
    script = (
        f'if [ "$1" = kill ]; then touch {tmp_path}/killed; exit 0; fi\n'
        f"while [ ! -e {tmp_path}/killed ]; do sleep 0.05; done; exit 137"
    )
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    result, _ = _run(tmp_path, script, cancel)
    timer.join()
    assert result.outcome is Outcome.CANCELLED
    run_line, kill_line = calls(tmp_path)
    name = run_line.split()[run_line.split().index("--name") + 1]
    assert kill_line == f"kill {name}"
