"""The bwrap sandbox's layout and plan, and its job init, without starting bwrap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gpunet.errors import ConfigError
from gpunet.node.runtime.base import Limits, RunRequest
from gpunet.node.runtime.bwrap import (
    JOB_INIT,
    PYTHON_DEST,
    VENV_DEST,
    Bind,
    BwrapRuntime,
    PythonLayout,
    SandboxFds,
    Staging,
    etc_files,
    python_layout,
    read_report,
    sandbox_options,
    system_options,
)
from gpunet.node.runtime.limits import LaunchPlan

PYENV = "/root/.pyenv/versions/3.11.7"


def options_for(limits: Limits, gpu_devices: tuple[str, ...] = ()) -> list[str]:
    return sandbox_options(
        system=["--ro-bind", "/usr", "/usr"],
        binds=[Bind(source="/srv/py", dest="/srv/py")],
        work=Bind(source="/data/jobs/j1", dest="/work", writable=True),
        files={"/etc/passwd": 7},
        env={"PATH": "/usr/bin", "SECRET": "s3"},
        limits=limits,
        gpu_devices=gpu_devices,
        info_fd=9,
    )


def pairs(options: list[str], flag: str) -> list[tuple[str, str]]:
    return [(options[i + 1], options[i + 2]) for i, item in enumerate(options) if item == flag]


# --- where Python goes ---------------------------------------------------------------


def test_a_venv_under_the_sandbox_workdir_moves_and_its_base_keeps_its_path() -> None:
    layout = python_layout("/work/main/.venv", PYENV, "/work/main/.venv/bin/python", "/root")
    assert [bind.dest for bind in layout.binds] == [PYENV, VENV_DEST]
    assert layout.sandbox_python == f"{VENV_DEST}/bin/python"


def test_a_venv_elsewhere_keeps_its_path() -> None:
    layout = python_layout("/srv/agent/venv", PYENV, "/srv/agent/venv/bin/python3", "/root")
    assert [(bind.source, bind.dest) for bind in layout.binds] == [
        (PYENV, PYENV),
        ("/srv/agent/venv", "/srv/agent/venv"),
    ]
    assert layout.sandbox_python == "/srv/agent/venv/bin/python3"


def test_a_system_python_needs_no_bind_of_its_own() -> None:
    layout = python_layout("/usr", "/usr", "/usr/bin/python3.11", "/home/op")
    assert layout.binds == ()
    assert layout.sandbox_python == "/usr/bin/python3.11"


def test_a_plain_python_in_a_clashing_place_moves_whole() -> None:
    layout = python_layout("/tmp/py", "/tmp/py", "/tmp/py/bin/python3", "/root")
    assert [bind.dest for bind in layout.binds] == [PYTHON_DEST]
    assert layout.sandbox_python == f"{PYTHON_DEST}/bin/python3"


@pytest.mark.parametrize(
    ("prefix", "base", "words"),
    [
        ("/srv/venv", "/work/python", "base prefix"),
        ("/", "/", "host root"),
        ("/srv/venv", "/home/op", "a home"),
    ],
)
def test_layouts_that_would_expose_or_break_the_host_are_refused(
    prefix: str, base: str, words: str
) -> None:
    with pytest.raises(ConfigError, match=words):
        python_layout(prefix, base, f"{prefix}/bin/python", "/home/op")


def test_the_running_interpreter_has_a_layout() -> None:
    layout = PythonLayout.of_this_interpreter()
    assert layout.sandbox_python.endswith(os.path.basename(sys.executable))


def test_job_env_is_clean_with_defaults_the_job_may_override() -> None:
    layout = python_layout("/srv/venv", PYENV, "/srv/venv/bin/python", "/root")
    env = layout.job_env({"HOME": "/work", "SEED": "7"}, Limits(cpu_cores=4))
    assert env == {
        "PATH": "/srv/venv/bin:/usr/local/bin:/usr/bin:/bin",
        "HOME": "/work",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "4",
        "SEED": "7",
    }


# --- what bwrap is told ----------------------------------------------------------------


def test_system_options_follow_the_hosts_layout(tmp_path: Path) -> None:
    (tmp_path / "usr" / "bin").mkdir(parents=True)
    (tmp_path / "bin").symlink_to("usr/bin")
    (tmp_path / "lib64").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "ld.so.cache").write_bytes(b"")
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 10.0.0.1\n")
    (tmp_path / "etc" / "localtime").symlink_to("/nonexistent/zoneinfo")  # dangling
    (tmp_path / "etc" / "shadow").write_text("root:!:19000::::::\n")

    closed = system_options(network=False, root=str(tmp_path))
    opened = system_options(network=True, root=str(tmp_path))

    assert closed[:3] == ["--ro-bind", str(tmp_path / "usr"), "/usr"]
    assert ("usr/bin", "/bin") in pairs(closed, "--symlink")
    assert (str(tmp_path / "lib64"), "/lib64") in pairs(closed, "--ro-bind")
    assert [dest for _, dest in pairs(closed, "--ro-bind") if dest.startswith("/etc")] == [
        "/etc/ld.so.cache"
    ]
    assert (str(tmp_path / "etc" / "resolv.conf"), "/etc/resolv.conf") in pairs(opened, "--ro-bind")


def test_sandbox_is_sealed_without_network_and_shares_it_only_when_allowed() -> None:
    closed = options_for(Limits())
    opened = options_for(Limits(network=True))
    for options in (closed, opened):
        assert options[:3] == ["--unshare-all", "--unshare-user", "--disable-userns"]
        assert "--die-with-parent" in options
        assert "--new-session" in options
    assert "--share-net" not in closed
    assert "--share-net" in opened


def test_sandbox_gets_a_clean_environment_only_writable_work_and_sized_tmp() -> None:
    options = options_for(Limits(tmp_mib=64), gpu_devices=("/dev/nvidia0",))
    assert options[options.index("--clearenv") + 1 : options.index("--clearenv") + 7] == [
        "--setenv",
        "PATH",
        "/usr/bin",
        "--setenv",
        "SECRET",
        "s3",
    ]
    assert pairs(options, "--bind") == [("/data/jobs/j1", "/work")]
    assert ("/srv/py", "/srv/py") in pairs(options, "--ro-bind")
    assert ("7", "/etc/passwd") in pairs(options, "--ro-bind-data")
    assert ("/dev/nvidia0", "/dev/nvidia0") in pairs(options, "--dev-bind")
    size = str(64 * 1024 * 1024)
    assert options[options.index("/tmp") - 3 : options.index("/tmp") + 1] == [
        "--size",
        size,
        "--tmpfs",
        "/tmp",
    ]
    # The root and /dev become read-only after everything is mounted on them.
    last_mount = max(i for i, item in enumerate(options) if item in ("--bind", "--dev-bind"))
    assert options.index("--remount-ro") > last_mount
    assert options[-6:] == ["--remount-ro", "/", "--chdir", "/work", "--info-fd", "9"]


def test_etc_files_name_only_the_job_account() -> None:
    files = etc_files(1000, 1000)
    assert "job:x:1000:1000:gpunet job:/tmp:/bin/sh" in files["/etc/passwd"].splitlines()
    assert "job:x:1000:" in files["/etc/group"].splitlines()
    assert "127.0.0.1 localhost" in files["/etc/hosts"]
    as_nobody = etc_files(65534, 65534)
    assert [line.split(":")[0] for line in as_nobody["/etc/passwd"].splitlines()] == [
        "root",
        "nobody",
    ]


def test_extra_paths_may_not_cover_the_sandboxes_own() -> None:
    BwrapRuntime(extra_ro_paths=[Path("/opt/models")])
    for bad in ("/", "/work", "/tmp/models", "relative/models", "/opt"):
        with pytest.raises(ConfigError, match="extra read-only path"):
            BwrapRuntime(extra_ro_paths=[Path(bad)])


# --- the launch plan -----------------------------------------------------------------


def _plan(tmp_path: Path, *, as_root: bool, network: bool = False) -> tuple[LaunchPlan, str]:
    runtime = BwrapRuntime(job_uid=4242, job_gid=4343)
    layout = python_layout("/srv/venv", PYENV, "/srv/venv/bin/python", "/root")
    limits = Limits(max_processes=40, network=network)
    request = RunRequest(argv=("python", "train.py"), workdir=tmp_path, env={}, limits=limits)
    fds = SandboxFds()
    try:
        with Staging(as_root) as staging:
            plan = runtime.plan(
                request,
                layout=layout,
                bwrap="/usr/bin/bwrap",
                staging=staging,
                cpus=(2,),
                as_root=as_root,
                fds=fds,
            )
            args_fd = int(plan.argv[2])
            os.lseek(args_fd, 0, os.SEEK_SET)
            options = os.read(args_fd, 1 << 20).decode()
    finally:
        fds.close_all()
    return plan, options


def test_plan_as_root_stages_the_binds_and_drops_to_the_job_uid(tmp_path: Path) -> None:
    plan, options = _plan(tmp_path, as_root=True)
    assert plan.uid == 4242 and plan.gid == 4343
    staged = dict(plan.staging)
    assert set(staged) == {PYENV, "/srv/venv", str(tmp_path)}
    assert all(point.startswith(os.path.dirname(point)) for point in staged.values())
    assert f"\0{staged[str(tmp_path)]}\0/work\0" in options
    assert plan.cpus == (2,)


def test_plan_as_a_user_binds_in_place_and_keeps_the_uid(tmp_path: Path) -> None:
    plan, options = _plan(tmp_path, as_root=False)
    assert plan.uid is None and plan.staging == ()
    assert f"\0{tmp_path}\0/work\0" in options
    argv = plan.argv
    assert argv[:2] == ("/usr/bin/bwrap", "--args")
    assert argv[3:9] == ("--", "/srv/venv/bin/python", "-I", "-S", "-c", JOB_INIT)
    assert argv[-2:] == ("python", "train.py")
    nproc = plan.rlimits["RLIMIT_NPROC"][0]
    assert nproc > 40


# --- the job init, run directly on the host ------------------------------------------


def _job_init(*argv: str) -> tuple[subprocess.CompletedProcess[str], dict[str, dict[str, object]]]:
    read_end, write_end = os.pipe()
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", JOB_INIT, str(write_end), *argv],
            pass_fds=(write_end,),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        os.close(write_end)
        return done, read_report(read_end)
    finally:
        os.close(read_end)


def test_job_init_reports_ready_and_the_exit_with_usage() -> None:
    done, report = _job_init(sys.executable, "-c", "print('hi'); raise SystemExit(3)")
    assert done.stdout == "hi\n"
    assert done.returncode == 3
    assert report["ready"] == {"event": "ready"}
    end = report["exit"]
    assert end["exit_code"] == 3 and end["signal"] is None
    assert isinstance(end["cpu_s"], float) and end["cpu_s"] > 0
    assert isinstance(end["max_rss_kib"], int) and end["max_rss_kib"] > 1000


def test_job_init_reports_a_signal_exactly() -> None:
    done, report = _job_init(sys.executable, "-c", "import os; os.kill(os.getpid(), 9)")
    assert report["exit"]["signal"] == 9 and report["exit"]["exit_code"] is None
    assert done.returncode == 128 + 9


def test_job_init_gives_the_job_only_the_standard_streams() -> None:
    done, _ = _job_init(
        sys.executable, "-c", "import os; print(sorted(os.listdir('/proc/self/fd')))"
    )
    assert done.stdout == "['0', '1', '2', '3']\n"  # 3: listdir's own handle


def test_job_init_does_not_pass_on_the_signals_python_ignores() -> None:
    # Python ignores SIGPIPE and SIGXFSZ; a job must get them back, or pipelines never end
    # and a shell command writing past the file-size limit is not stopped.
    done, _ = _job_init("grep", "SigIgn", "/proc/self/status")
    ignored = int(done.stdout.split()[1], 16)
    assert ignored & (1 << (signal.SIGPIPE - 1)) == 0
    assert ignored & (1 << (signal.SIGXFSZ - 1)) == 0


def test_job_init_says_when_a_command_cannot_be_run() -> None:
    done, report = _job_init("no-such-command-here")
    assert report["exit"]["exit_code"] == 127
    assert "cannot run 'no-such-command-here'" in done.stderr


def test_report_parser_skips_lines_that_are_not_events() -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, b'{"event": "ready"}\nnot json\n[1]\n{"event": "exit", "exit_code": 0}\n')
    os.close(write_end)
    report = read_report(read_end)
    os.close(read_end)
    assert report == {"ready": {"event": "ready"}, "exit": {"event": "exit", "exit_code": 0}}
    assert json.dumps(report)
