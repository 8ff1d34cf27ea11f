"""Kernel limits for a job, the launcher that applies them, and the wall-time watch."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gpunet.node.runtime.base import Limits, StopReason
from gpunet.node.runtime.limits import (
    CPU_HARD_GRACE_S,
    LAUNCH_ERROR_PREFIX,
    LAUNCH_ERROR_STATUS,
    MIB,
    SANDBOX_OWN_PROCESSES,
    CpuSlots,
    LaunchPlan,
    SandboxInit,
    count_tasks,
    launcher_argv,
    main,
    nproc_limit,
    rlimits_for,
    tasks_in_status,
    watch,
    within_hard_limit,
)

STATUS = "Name:\tpython\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nThreads:\t{threads}\n"


def test_rlimits_cover_memory_cpu_files_processes_and_core_dumps() -> None:
    limits = Limits(memory_mib=300, wall_time_s=10, cpu_cores=2, max_file_mib=5)
    assert rlimits_for(limits, nproc=77, gpu=False) == {
        "RLIMIT_AS": (300 * MIB, 300 * MIB),
        "RLIMIT_CPU": (20, 20 + CPU_HARD_GRACE_S),
        "RLIMIT_FSIZE": (5 * MIB, 5 * MIB),
        "RLIMIT_NPROC": (77, 77),
        "RLIMIT_CORE": (0, 0),
    }


def test_gpu_jobs_get_a_data_limit_instead_of_an_address_space_limit() -> None:
    got = rlimits_for(Limits(memory_mib=300), nproc=10, gpu=True)
    assert got["RLIMIT_DATA"] == (300 * MIB, 300 * MIB)
    assert "RLIMIT_AS" not in got


def test_tasks_in_status_counts_threads_of_the_real_uid_only() -> None:
    assert tasks_in_status(STATUS.format(uid=1000, threads=12), 1000) == 12
    assert tasks_in_status(STATUS.format(uid=1000, threads=12), 65534) == 0
    # Real uid differs, effective matches: RLIMIT_NPROC counts by real uid.
    assert tasks_in_status("Uid:\t5\t7\t7\t7\nThreads:\t3\n", 7) == 0
    assert tasks_in_status("Uid:\t7\t7\t7\t7\n", 7) == 1


def test_nproc_limit_adds_the_jobs_share_to_what_the_uid_already_runs(tmp_path: Path) -> None:
    for pid, (uid, threads) in {"10": (1000, 4), "11": (1000, 1), "12": (0, 30)}.items():
        (tmp_path / pid).mkdir()
        (tmp_path / pid / "status").write_text(STATUS.format(uid=uid, threads=threads))
    (tmp_path / "self").mkdir()  # not a pid: ignored
    (tmp_path / "13").mkdir()  # exited between listing and reading: ignored

    assert count_tasks(1000, tmp_path) == 5
    assert nproc_limit(Limits(max_processes=50), 1000, tmp_path) == 55 + SANDBOX_OWN_PROCESSES


def test_count_tasks_sees_this_process() -> None:
    assert count_tasks(os.getuid()) >= threading.active_count()


def test_cpu_slots_spread_jobs_over_the_least_busy_cores() -> None:
    slots = CpuSlots([0, 1, 2, 3])
    first = slots.acquire(2)
    second = slots.acquire(2)
    assert first == (0, 1)
    assert second == (2, 3)
    slots.release(first)
    assert slots.acquire(1) == (0,)
    assert slots.acquire(4) is None  # as many as there are: no pinning
    slots.release(None)


def test_limits_above_the_hard_limit_are_lowered_to_it() -> None:
    assert within_hard_limit((10, 20), resource.RLIM_INFINITY) == (10, 20)
    assert within_hard_limit((10, 20), 15) == (10, 15)
    assert within_hard_limit((30, 40), 15) == (15, 15)


def test_launch_plan_survives_its_json_trip() -> None:
    plan = LaunchPlan(
        argv=("bwrap", "--args", "5"),
        rlimits={"RLIMIT_NPROC": (10, 10)},
        cpus=(1, 3),
        uid=65534,
        gid=65534,
        staging=(("/root/py", "/tmp/stage/0"),),
    )
    assert LaunchPlan.from_json(plan.to_json()) == plan


def test_launcher_applies_limits_and_pinning_then_becomes_the_command() -> None:
    cpu = sorted(os.sched_getaffinity(0))[0]
    probe = (
        "import json, os, resource; print(json.dumps([resource.getrlimit(resource.RLIMIT_FSIZE),"
        " resource.getrlimit(resource.RLIMIT_CORE), sorted(os.sched_getaffinity(0))]))"
    )
    plan = LaunchPlan(
        argv=(sys.executable, "-c", probe),
        rlimits={"RLIMIT_FSIZE": (3 * MIB, 3 * MIB), "RLIMIT_CORE": (0, 0)},
        cpus=(cpu,),
    )
    done = subprocess.run(launcher_argv(plan), capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [[3 * MIB, 3 * MIB], [0, 0], [cpu]]


def test_launcher_reports_a_plan_it_cannot_apply(capsys: pytest.CaptureFixture[str]) -> None:
    plan = LaunchPlan(argv=("/nonexistent/bwrap",), rlimits={})
    assert main(["launcher", plan.to_json()]) == LAUNCH_ERROR_STATUS
    assert capsys.readouterr().err.startswith(LAUNCH_ERROR_PREFIX)
    assert main(["launcher", "{not json"]) == LAUNCH_ERROR_STATUS


def _sleeper(seconds: float) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-c", f"import time; time.sleep({seconds})"], start_new_session=True
    )


def test_watch_returns_the_status_of_a_job_that_ends_by_itself() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    kills: list[float] = []
    status, stopped = watch(
        proc,
        wall_time_s=60,
        cancel=threading.Event(),
        started=time.monotonic(),
        kill=lambda: kills.append(1),
    )
    assert os.waitstatus_to_exitcode(status) == 7
    assert stopped is None
    assert kills == []
    assert proc.returncode == 7


def test_watch_kills_at_the_wall_time_limit() -> None:
    proc = _sleeper(60)
    status, stopped = watch(
        proc, wall_time_s=0.2, cancel=threading.Event(), started=time.monotonic(), kill=proc.kill
    )
    assert stopped is StopReason.TIMEOUT
    assert os.WIFSIGNALED(status)


def test_watch_kills_on_cancel_and_repeats_the_kill_until_the_job_is_gone() -> None:
    proc = _sleeper(60)
    cancel = threading.Event()
    cancel.set()
    kills: list[float] = []

    def stubborn_kill() -> None:
        kills.append(1)
        if len(kills) == 2:  # the first kill "did not arrive"
            proc.kill()

    _, stopped = watch(proc, wall_time_s=60, cancel=cancel, started=0.0, kill=stubborn_kill)
    assert stopped is StopReason.CANCEL
    assert len(kills) == 2


def test_sandbox_init_reads_bwraps_info_and_waits_until_the_process_is_gone() -> None:
    proc = _sleeper(60)
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    init = SandboxInit(read_end)
    os.write(write_end, b'{\n    "child-pid": ')
    init.poll()
    assert init.pidfd is None  # half a document: wait for the rest
    os.write(write_end, f'{proc.pid},\n    "pid-namespace": 4026532181\n}}\n'.encode())
    init.poll()
    assert init.pidfd is not None

    assert init.wait_gone(timeout_s=10)
    assert proc.wait(timeout=10) == -9
    assert init.pidfd is None
    os.close(read_end)
    os.close(write_end)


def test_sandbox_init_without_info_has_nothing_to_wait_for() -> None:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.close(write_end)  # bwrap failed before it cloned the sandbox
    init = SandboxInit(read_end)
    init.poll()
    assert init.pidfd is None
    assert init.wait_gone()
    os.close(read_end)
