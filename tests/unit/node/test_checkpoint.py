"""Checkpoint packing and restoring: round trips, change detection, and hostile archives."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from gpunet.node.checkpoint import fingerprint, pack, restore
from gpunet.node.workdir import WorkDirError

MIB = 1 << 20


def archive(*members: tuple[tarfile.TarInfo, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            info.size = len(data) if info.isfile() else 0
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def test_pack_and_restore_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "ckpt"
    (source / "nested").mkdir(parents=True)
    (source / "model.bin").write_bytes(b"\x00\x01" * 1000)
    (source / "nested" / "step.txt").write_text("41")

    target = tmp_path / "restored"
    target.mkdir()
    files = restore(pack(source), target, max_bytes=MIB)

    assert files == 2
    assert (target / "model.bin").read_bytes() == b"\x00\x01" * 1000
    assert (target / "nested" / "step.txt").read_text() == "41"
    assert fingerprint(target) != ()


def test_pack_skips_links_planted_in_the_folder(tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("do not upload")
    source = tmp_path / "ckpt"
    source.mkdir()
    (source / "real.txt").write_text("mine")
    (source / "leak.txt").symlink_to(secret)
    (source / "leakdir").symlink_to(tmp_path)

    with tarfile.open(fileobj=io.BytesIO(pack(source)), mode="r:gz") as tar:
        names = tar.getnames()

    assert names == ["real.txt"]


def test_fingerprint_changes_with_content_and_ignores_links(tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    folder.mkdir()
    assert fingerprint(folder) == ()
    (folder / "state").write_text("1")
    first = fingerprint(folder)
    (folder / "link").symlink_to(folder / "state")
    assert fingerprint(folder) == first

    (folder / "state").write_text("22")

    assert fingerprint(folder) != first
    assert fingerprint(tmp_path / "missing") == ()


@pytest.mark.parametrize(
    "hostile",
    [
        member("/etc/cron.d/evil"),
        member("../escaped.txt"),
        member("a/../../escaped.txt"),
        member("link", tarfile.SYMTYPE, "/etc/passwd"),
        member("hard", tarfile.LNKTYPE, "../../outside"),
        member("dev", tarfile.CHRTYPE),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink-out", "hardlink-out", "device"],
)
def test_hostile_archives_are_refused(tmp_path: Path, hostile: tarfile.TarInfo) -> None:
    target = tmp_path / "job" / "ckpt"
    target.mkdir(parents=True)

    with pytest.raises(WorkDirError, match="cannot be restored safely"):
        restore(archive((hostile, b"x")), target, max_bytes=MIB)

    assert not (tmp_path / "escaped.txt").exists()
    assert not (tmp_path / "job" / "escaped.txt").exists()


def test_an_archive_larger_than_the_job_disk_is_refused_before_writing(tmp_path: Path) -> None:
    big = archive((member("a.bin"), b"a" * 600), (member("b.bin"), b"b" * 600))

    with pytest.raises(WorkDirError, match="more than 1000 bytes"):
        restore(big, tmp_path, max_bytes=1000)

    assert os.listdir(tmp_path) == []


def test_garbage_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WorkDirError):
        restore(b"not a tarball", tmp_path, max_bytes=MIB)
