"""Run a job in a Docker container: the job brings its own image, the engine isolates it.

The container gets the same limits as a bwrap sandbox, expressed as ``docker run``
options: no network unless allowed, a cgroup memory limit (swap included), a CPU
share, a pids limit, a read-only root with a sized ``/tmp``, every capability dropped,
no privilege gain, and the work directory at ``/work``. On timeout or cancel the
runtime runs ``docker kill`` on the container's unique name; ``--rm`` removes it.

Docker reports a container whose main process was killed by signal N with status
128+N; a SIGKILL that the runtime did not send is read as the cgroup's out-of-memory
killer, and the message says that this is inferred. CPU time and peak memory are not
measured here (0.0): they live in the engine, not in this process's children.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Mapping

from gpunet.errors import ValidationError
from gpunet.node.runtime.base import (
    Evidence,
    Limits,
    OutputCallback,
    OutputPump,
    RunRequest,
    RunResult,
    StopReason,
    classify,
    hand_over,
    split_shell_status,
)
from gpunet.node.runtime.limits import CPU_HARD_GRACE_S, MIB, watch

log = logging.getLogger("gpunet.node")

CONTAINER_WORKDIR = "/work"
# `docker run` exits 125 when the engine could not create or start the container.
DOCKER_RUN_FAILED = 125
DOCKER_TIMEOUT_S = 15.0
KILLS_BEFORE_CLIENT_KILL = 10
_GPU_INDEX = re.compile(r"/dev/nvidia(\d+)")


class DockerRuntime:
    """Runs jobs with ``docker run``; as root, containers run as ``job_uid:job_gid``.

    As root the work directory is handed to the job uid first; as an ordinary user the
    container runs as that user, so it can write the work directory the agent made.
    """

    name = "docker"

    def __init__(
        self, *, docker: str = "docker", job_uid: int = 65534, job_gid: int = 65534
    ) -> None:
        self.docker = docker
        self.job_uid = job_uid
        self.job_gid = job_gid

    def available(self) -> str | None:
        """None when an engine answers ``docker info``, else why not."""
        if shutil.which(self.docker) is None:
            return f"{self.docker} not found on PATH: install Docker (client and engine)"
        try:
            done = subprocess.run(
                [self.docker, "info", "--format", "{{.ServerVersion}}"],
                capture_output=True,
                text=True,
                timeout=DOCKER_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"could not run {self.docker} info: {exc}"
        if done.returncode != 0:
            detail = (done.stderr or done.stdout).strip().splitlines()
            last = detail[-1] if detail else f"exit status {done.returncode}"
            return f"no Docker engine answers `{self.docker} info`: {last}"
        return None

    def user(self) -> tuple[int, int]:
        """The uid and gid the container runs as."""
        if os.geteuid() == 0:
            return self.job_uid, self.job_gid
        return os.getuid(), os.getgid()

    def command(self, request: RunRequest, container: str) -> list[str]:
        """The exact ``docker run`` command line for ``request``."""
        image = request.image
        if not image or image.startswith("-"):
            raise ValidationError("image", image, "the docker runtime needs an image name")
        limits = request.limits
        uid, gid = self.user()
        args = [self.docker, "run", "--rm", "--name", container, "--label", "gpunet.job=1"]
        args += ["--init", "--hostname", "gpunet-job"]
        if not limits.network:
            args += ["--network", "none"]
        args += _resource_options(limits)
        args += ["--read-only", "--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.tmp_mib}m"]
        args += ["--shm-size", f"{limits.tmp_mib}m"]
        args += ["--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        args += ["-v", f"{request.workdir}:{CONTAINER_WORKDIR}", "-w", CONTAINER_WORKDIR]
        args += ["--user", f"{uid}:{gid}"]
        if request.gpu_devices:
            args += ["--gpus", gpu_option(request.gpu_devices)]
        for name, value in sorted(job_env(request.env, limits).items()):
            args += ["-e", f"{name}={value}"]
        return [*args, image, *request.argv]

    def run(
        self, request: RunRequest, on_output: OutputCallback, cancel: threading.Event
    ) -> RunResult:
        """Run ``request`` in a fresh container and classify how it ended."""
        started = time.monotonic()
        container = f"gpunet-{uuid.uuid4().hex[:16]}"
        command = self.command(request, container)
        if os.geteuid() == 0:
            hand_over(request.workdir, self.job_uid, self.job_gid)
        proc = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        pump = OutputPump(on_output)
        assert proc.stdout is not None and proc.stderr is not None
        pump.start(proc.stdout, proc.stderr)
        attempts = 0

        def kill() -> None:
            nonlocal attempts
            attempts += 1
            self._kill(container)
            if attempts > KILLS_BEFORE_CLIENT_KILL:
                proc.kill()  # the engine does not answer: at least stop waiting on it

        status, stopped = watch(
            proc,
            wall_time_s=request.limits.wall_time_s,
            cancel=cancel,
            started=started,
            kill=kill,
        )
        pump.join()
        return _result(request.limits, status, stopped, pump, started)

    def _kill(self, container: str) -> None:
        try:
            subprocess.run(
                [self.docker, "kill", container],
                capture_output=True,
                timeout=DOCKER_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("docker kill %s failed: %s", container, exc)


def _resource_options(limits: Limits) -> list[str]:
    cpu = limits.effective_cpu_time_s
    file_bytes = limits.max_file_mib * MIB
    return [
        "--memory",
        f"{limits.memory_mib}m",
        "--memory-swap",
        f"{limits.memory_mib}m",
        "--cpus",
        str(limits.cpu_cores),
        "--pids-limit",
        str(limits.max_processes),
        "--ulimit",
        f"fsize={file_bytes}:{file_bytes}",
        "--ulimit",
        f"cpu={cpu}:{cpu + CPU_HARD_GRACE_S}",
        "--ulimit",
        "core=0:0",
    ]


def gpu_option(devices: tuple[str, ...]) -> str:
    """``--gpus`` value: the numbered ``/dev/nvidiaN`` devices asked for, else all."""
    indexes = [match.group(1) for device in devices if (match := _GPU_INDEX.fullmatch(device))]
    if not indexes:
        return "all"
    # The quotes keep Docker's CSV parser from splitting the device list at its commas.
    return f'"device={",".join(indexes)}"'


def job_env(env: Mapping[str, str], limits: Limits) -> dict[str, str]:
    """Defaults, then the job's variables; PATH stays the image's own."""
    defaults = {
        "HOME": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": str(limits.cpu_cores),
    }
    return {**defaults, **env}


def _result(
    limits: Limits,
    status: int,
    stopped: StopReason | None,
    pump: OutputPump,
    started: float,
) -> RunResult:
    wall = time.monotonic() - started
    exit_code: int | None
    sig: int | None
    if os.WIFSIGNALED(status):
        exit_code, sig = None, os.WTERMSIG(status)
    else:
        exit_code, sig = split_shell_status(os.WEXITSTATUS(status))
    tail = list(pump.error_tail)
    evidence = Evidence(
        exit_code=exit_code,
        signal=sig,
        wall_time_s=wall,
        stopped=stopped,
        started=exit_code != DOCKER_RUN_FAILED,
        setup_error=tail[-1] if tail else "",
        symptoms=dict(pump.symptoms),
        unexplained_kill_is_oom=True,
    )
    outcome, message = classify(evidence, limits)
    return RunResult(outcome, exit_code, sig, wall, 0.0, 0.0, message)
