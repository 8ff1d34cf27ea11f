"""Work dirs: inputs land inside, outputs are read without following a job's links."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from gpunet.api.jobs import FileRef
from gpunet.node.workdir import (
    WorkDirError,
    find_outputs,
    fresh_work_dir,
    read_beneath,
    relative_parts,
    write_input,
)


def ref(path: str, data: bytes) -> FileRef:
    return FileRef(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def test_fresh_work_dir_removes_what_an_earlier_run_left(tmp_path: Path) -> None:
    first = fresh_work_dir(tmp_path, "j-0123456789abcdef", 1)
    (first / "stale.txt").write_text("old")

    again = fresh_work_dir(tmp_path, "j-0123456789abcdef", 1)

    assert again == first and os.listdir(again) == []


def test_inputs_are_written_at_their_target(tmp_path: Path) -> None:
    path = write_input(tmp_path, ref("data/rows.csv", b"a,b\n"), b"a,b\n")

    assert path == tmp_path / "data" / "rows.csv"
    assert path.read_bytes() == b"a,b\n"


def test_an_input_with_the_wrong_size_or_hash_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WorkDirError, match="SHA-256"):
        write_input(tmp_path, ref("a.txt", b"expected"), b"received")
    assert not (tmp_path / "a.txt").exists()


@pytest.mark.parametrize("path", ["/etc/passwd", "../up.txt", "a/../../up.txt", "."])
def test_paths_leaving_the_work_dir_are_refused(path: str) -> None:
    with pytest.raises(WorkDirError, match="leave the job's work dir"):
        relative_parts(path)


def test_outputs_match_patterns_and_skip_links_and_folders(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    work = tmp_path / "work"
    (work / "out" / "sub").mkdir(parents=True)
    (work / "out" / "a.txt").write_text("a")
    (work / "out" / "sub" / "b.txt").write_text("b")
    (work / "out" / "leak.txt").symlink_to(outside / "secret.txt")
    (work / "escape").symlink_to(outside)

    found = find_outputs(work, ["out/*.txt", "out/**/*.txt", "out/sub", "escape/*.txt"])

    assert found == ["out/a.txt", "out/sub/b.txt"]


def test_read_beneath_refuses_a_link_anywhere_in_the_path(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file")
    work = tmp_path / "work"
    work.mkdir()
    (work / "escape").symlink_to(outside)
    (work / "leak.txt").symlink_to(outside / "secret.txt")
    (work / "fine.txt").write_text("ok")

    assert read_beneath(work, "fine.txt") == b"ok"
    for path in ("escape/secret.txt", "leak.txt"):
        with pytest.raises(OSError):
            read_beneath(work, path)


def test_read_beneath_refuses_what_is_not_a_regular_file(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")

    with pytest.raises(WorkDirError, match="not a regular file"):
        read_beneath(tmp_path, "pipe")
