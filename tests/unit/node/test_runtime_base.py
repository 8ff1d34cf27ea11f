"""The shared runtime vocabulary: limits, requests, line splitting, output pump, outcomes."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from gpunet.errors import ValidationError
from gpunet.node.runtime.base import (
    Evidence,
    Limits,
    LineSplitter,
    Outcome,
    OutputPump,
    RunRequest,
    StopReason,
    Symptom,
    classify,
    hand_over,
    signal_name,
    split_shell_status,
)

LIMITS = Limits(memory_mib=256, wall_time_s=30.0, max_processes=64, max_file_mib=8)


def evidence(**fields: object) -> Evidence:
    base: dict[str, object] = {"exit_code": 1, "signal": None, "wall_time_s": 1.5}
    base.update(fields)
    return Evidence(**base)  # type: ignore[arg-type]


# --- Limits and RunRequest -------------------------------------------------------------


def test_cpu_time_defaults_to_wall_time_times_cores_rounded_up() -> None:
    assert Limits(cpu_cores=3, wall_time_s=10.5).effective_cpu_time_s == 32
    assert Limits(cpu_cores=3, wall_time_s=10.5, cpu_time_s=7).effective_cpu_time_s == 7


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("cpu_cores", 0),
        ("memory_mib", -1),
        ("max_processes", True),
        ("max_file_mib", 1.5),
        ("wall_time_s", 0.0),
        ("wall_time_s", float("inf")),
        ("cpu_time_s", 0),
    ],
)
def test_limits_refuse_values_that_cannot_be_enforced(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Limits(**{field: value})  # type: ignore[arg-type]
    assert caught.value.field == field


def test_request_needs_a_command_and_an_existing_absolute_workdir(tmp_path: Path) -> None:
    RunRequest(argv=("true",), workdir=tmp_path, env={}, limits=LIMITS)
    with pytest.raises(ValidationError, match="argv"):
        RunRequest(argv=(), workdir=tmp_path, env={}, limits=LIMITS)
    with pytest.raises(ValidationError, match="workdir"):
        RunRequest(argv=("true",), workdir=tmp_path / "missing", env={}, limits=LIMITS)
    with pytest.raises(ValidationError, match="workdir"):
        RunRequest(argv=("true",), workdir=Path("relative"), env={}, limits=LIMITS)


@pytest.mark.parametrize("name", ["", "1ABC", "A=B", "WITH SPACE"])
def test_request_refuses_environment_names_a_process_cannot_hold(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValidationError, match="env"):
        RunRequest(argv=("true",), workdir=tmp_path, env={name: "x"}, limits=LIMITS)


# --- LineSplitter --------------------------------------------------------------------


def test_lines_end_at_newline_and_the_rest_waits_for_more() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\n\nthree") == ["two", ""]
    assert splitter.finish() == ["three"]
    assert splitter.finish() == []


def test_crlf_split_across_chunks_is_one_line_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"dos\r") == ["dos"]
    assert splitter.feed(b"\nnext\r\n") == ["next"]
    assert splitter.finish() == []


def test_carriage_returns_stream_progress_bars_as_lines() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"\r 10%|#\r 50%|#####\r100%|##########\n") == [
        " 10%|#",
        " 50%|#####",
        "100%|##########",
    ]


def test_overlong_lines_keep_their_head_and_say_how_much_was_cut() -> None:
    splitter = LineSplitter(max_bytes=8)
    assert splitter.feed(b"0123456789") == []
    assert splitter.feed(b"abcdef\nshort\n") == ["01234567 [... 8 more bytes cut]", "short"]


def test_bytes_that_are_not_utf8_are_replaced_not_fatal() -> None:
    splitter = LineSplitter()
    assert splitter.feed("grüße\n".encode() + b"\xff\xfe\n") == ["grüße", "\ufffd\ufffd"]


# --- OutputPump ----------------------------------------------------------------------


def _pump_bytes(pump: OutputPump, stdout: bytes, stderr: bytes) -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pump.start(os.fdopen(out_r, "rb"), os.fdopen(err_r, "rb"))
    os.write(out_w, stdout)
    os.write(err_w, stderr)
    os.close(out_w)
    os.close(err_w)
    pump.join()


def test_pump_delivers_both_streams_and_notes_limit_symptoms() -> None:
    seen: list[tuple[str, str]] = []
    lock = threading.Lock()

    def collect(stream: str, line: str) -> None:
        with lock:
            seen.append((stream, line))

    pump = OutputPump(collect)
    _pump_bytes(pump, b"result 42\n", b"Traceback\nMemoryError\n")
    assert sorted(seen) == [
        ("stderr", "MemoryError"),
        ("stderr", "Traceback"),
        ("stdout", "result 42"),
    ]
    assert pump.symptoms == {Symptom.MEMORY: "MemoryError"}
    assert list(pump.error_tail) == ["Traceback", "MemoryError"]


def test_pump_ignores_symptoms_printed_on_stdout() -> None:
    pump = OutputPump(lambda stream, line: None)
    _pump_bytes(pump, b"Cannot allocate memory\n", b"")
    assert pump.symptoms == {}


def test_pump_keeps_draining_when_the_callback_fails(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []

    def broken(stream: str, line: str) -> None:
        calls.append(line)
        raise RuntimeError("log sink down")

    pump = OutputPump(broken)
    big = b"x\n" * 100_000  # far more than a pipe holds: a stalled reader would block
    _pump_bytes(pump, big, b"")
    assert len(calls) == 100_000
    assert sum("output callback failed" in record.message for record in caplog.records) == 1


# --- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "outcome", "words"),
    [
        ({"exit_code": 0}, Outcome.SUCCEEDED, "status 0"),
        ({"exit_code": 0, "symptoms": {Symptom.MEMORY: "MemoryError"}}, Outcome.SUCCEEDED, ""),
        ({"exit_code": 3}, Outcome.FAILED, "exited with status 3"),
        ({"exit_code": 127}, Outcome.FAILED, "command not found"),
        ({"exit_code": None, "signal": 11}, Outcome.FAILED, "SIGSEGV"),
        ({"stopped": StopReason.TIMEOUT, "signal": 9}, Outcome.TIMED_OUT, "30 s wall-time"),
        ({"stopped": StopReason.CANCEL, "exit_code": 0}, Outcome.CANCELLED, "after 1.5 s"),
        ({"exit_code": None, "signal": signal.SIGXCPU}, Outcome.CPU_TIME_EXCEEDED, "30 s CPU"),
        (
            {"exit_code": None, "signal": 9, "cpu_time_s": 31.0},
            Outcome.CPU_TIME_EXCEEDED,
            "SIGKILL",
        ),
        ({"exit_code": None, "signal": signal.SIGXFSZ}, Outcome.FILE_TOO_LARGE, "8 MiB"),
        ({"exit_code": 153}, Outcome.FILE_TOO_LARGE, "as a shell reports"),
        (
            {"symptoms": {Symptom.FILE_SIZE: "File too large"}},
            Outcome.FILE_TOO_LARGE,
            "inferred from 'File too large'",
        ),
        (
            {"symptoms": {Symptom.MEMORY: "MemoryError"}},
            Outcome.MEMORY_EXCEEDED,
            "256 MiB memory limit",
        ),
        (
            {"exit_code": None, "signal": 9, "unexplained_kill_is_oom": True},
            Outcome.MEMORY_EXCEEDED,
            "most likely the out-of-memory killer",
        ),
        ({"exit_code": None, "signal": 9}, Outcome.FAILED, "killed by SIGKILL"),
        (
            {"symptoms": {Symptom.PROCESSES: "Cannot fork"}},
            Outcome.PROCESS_LIMIT,
            "64-process limit",
        ),
        (
            {"started": False, "setup_error": "bwrap: Can't find source path /x"},
            Outcome.SANDBOX_ERROR,
            "bwrap: Can't find source path /x",
        ),
        ({"started": False, "exit_code": 125}, Outcome.SANDBOX_ERROR, "status 125"),
    ],
)
def test_classify_names_each_ending(
    fields: dict[str, object], outcome: Outcome, words: str
) -> None:
    got, message = classify(evidence(**fields), LIMITS)
    assert got is outcome
    assert words in message
    assert "\n" not in message


def test_stop_by_the_runtime_wins_over_symptoms() -> None:
    got, _ = classify(
        evidence(stopped=StopReason.TIMEOUT, symptoms={Symptom.MEMORY: "MemoryError"}), LIMITS
    )
    assert got is Outcome.TIMED_OUT


def test_shell_status_above_128_means_a_signal() -> None:
    assert split_shell_status(0) == (0, None)
    assert split_shell_status(128) == (128, None)
    assert split_shell_status(137) == (None, 9)
    assert split_shell_status(255) == (255, None)
    assert signal_name(9) == "SIGKILL"
    assert signal_name(77) == "signal 77"


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a directory to another uid needs root")
def test_hand_over_gives_every_entry_to_the_job_but_follows_no_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("agent's", encoding="utf-8")
    work = tmp_path / "work"
    (work / "inputs").mkdir(parents=True)
    (work / "inputs" / "data.csv").write_text("1,2\n", encoding="utf-8")
    (work / "link").symlink_to(outside)

    hand_over(work, 65534, 65534)

    for path in (work, work / "inputs", work / "inputs" / "data.csv", work / "link"):
        assert os.lstat(path).st_uid == 65534
        assert os.lstat(path).st_gid == 65534
    assert outside.stat().st_uid == 0


def test_the_pump_hands_over_each_line_while_the_writer_keeps_the_pipe_open() -> None:
    read_end, write_end = os.pipe()
    arrived = threading.Event()
    seen: list[tuple[str, str]] = []

    def on_output(stream: str, line: str) -> None:
        seen.append((stream, line))
        arrived.set()

    pump = OutputPump(on_output)
    with open(read_end, "rb") as stdout, open(os.devnull, "rb") as stderr:
        pump.start(stdout, stderr)
        os.write(write_end, b"step 1\n")
        # The writer is still open: a line must not wait for the job to end.
        assert arrived.wait(timeout=10)
        os.close(write_end)
        pump.join()
    assert seen == [("stdout", "step 1")]
