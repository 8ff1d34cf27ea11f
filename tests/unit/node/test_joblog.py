"""LogBuffer: batches, order kept across a failed send, and a bound while the indexer is away."""

from __future__ import annotations

from gpunet.api.jobs import LogEntry
from gpunet.node.joblog import BATCH_LINES, MAX_LINE_CHARS, LogBuffer
from gpunet.sdk.errors import IndexerUnreachable


class Sink:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[LogEntry]] = []
        self.failures = failures

    def __call__(self, lines: list[LogEntry]) -> None:
        if self.failures:
            self.failures -= 1
            raise IndexerUnreachable("http://indexer.test", "refused")
        self.batches.append(lines)

    def lines(self) -> list[str]:
        return [entry.line for batch in self.batches for entry in batch]


def test_lines_go_out_in_batches_in_order() -> None:
    sink = Sink()
    buffer = LogBuffer(sink)
    for index in range(BATCH_LINES + 5):
        buffer.add("stdout", f"line {index}\n")

    assert buffer.flush()

    assert [len(batch) for batch in sink.batches] == [BATCH_LINES, 5]
    assert sink.lines() == [f"line {i}" for i in range(BATCH_LINES + 5)]


def test_a_failed_send_keeps_the_lines_for_the_next_flush() -> None:
    sink = Sink(failures=1)
    buffer = LogBuffer(sink)
    buffer.add("stdout", "first")
    assert not buffer.flush()
    buffer.add("stderr", "second")

    assert buffer.flush()

    assert sink.lines() == ["first", "second"]
    assert [entry.stream for entry in sink.batches[0]] == ["stdout", "stderr"]


def test_overflow_drops_the_oldest_and_says_so() -> None:
    sink = Sink()
    buffer = LogBuffer(sink, max_pending=3)
    for index in range(5):
        buffer.add("stdout", str(index))

    buffer.flush()

    assert sink.lines() == [
        "2 lines dropped while the indexer was unreachable",
        "2",
        "3",
        "4",
    ]


def test_long_lines_are_cut_and_unknown_streams_become_stdout() -> None:
    sink = Sink()
    buffer = LogBuffer(sink)
    buffer.add("weird", "x" * (MAX_LINE_CHARS + 100))

    buffer.flush()

    (entry,) = sink.batches[0]
    assert entry.stream == "stdout" and len(entry.line) == MAX_LINE_CHARS
