"""Checkpoints: the folder a job saves its progress in, carried to the job's next attempt.

While a job runs, the node packs its checkpoint folder as a tar.gz and uploads it when
the folder changed; a requeued attempt, maybe on another node, starts from the last one.
Jobs should write each checkpoint file atomically (write a temporary file, then rename
it), so a pack never catches a file half-written.

Packing walks the folder with ``os.fwalk`` and opens files relative to their folder with
``O_NOFOLLOW``: a link planted by the job is skipped, never followed to a host file.
Restoring uses ``tarfile``'s ``data`` filter, which refuses absolute paths, ``..``, links
leaving the folder and device files, and the archive's total size is bounded before a
byte is written.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path, PurePosixPath

from gpunet.node.workdir import WorkDirError

MAX_MEMBERS = 100_000
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK

# (relative path, size, mtime in ns) of each regular file: cheap to take every few
# seconds, and it changes whenever a file is written, replaced, added or removed.
Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(folder: Path) -> Fingerprint:
    """What the folder holds, by name, size and time; empty when it has no files."""
    if not folder.is_dir() or folder.is_symlink():
        return ()
    entries = []
    for top, _, files, top_fd in os.fwalk(folder, follow_symlinks=False):
        for name in files:
            try:
                info = os.stat(name, dir_fd=top_fd, follow_symlinks=False)
            except OSError:
                continue  # removed while we looked: the next look sees the new state
            if stat.S_ISREG(info.st_mode):
                relative = os.path.relpath(os.path.join(top, name), folder)
                entries.append((relative, info.st_size, info.st_mtime_ns))
    return tuple(sorted(entries))


def pack(folder: Path) -> bytes:
    """A tar.gz of the folder's regular files, paths relative to the folder.

    Raises OSError when a file changes size while it is read; try again later.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for top, _, files, top_fd in os.fwalk(folder, follow_symlinks=False):
            for name in sorted(files):
                relative = os.path.relpath(os.path.join(top, name), folder)
                _add_file(tar, top_fd, name, relative)
    return buffer.getvalue()


def restore(data: bytes, folder: Path, *, max_bytes: int) -> int:
    """Unpack a checkpoint into ``folder``; returns the number of files restored.

    Raises WorkDirError for an archive that is not a tar.gz, holds more than
    ``max_bytes`` of files, or holds a member that could land outside ``folder``.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            members = _bounded_members(tar, max_bytes)
            tar.extractall(folder, members=members, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise WorkDirError(
            f"the job's last checkpoint cannot be restored safely ({exc}); "
            "the attempt was not started"
        ) from exc
    return sum(1 for member in members if member.isfile())


def _bounded_members(tar: tarfile.TarFile, max_bytes: int) -> list[tarfile.TarInfo]:
    members = []
    total = 0
    for member in tar:
        parts = PurePosixPath(member.name).parts
        if member.name.startswith("/") or ".." in parts:
            raise WorkDirError(
                f"the job's last checkpoint cannot be restored safely: it holds the path "
                f"{member.name!r}, outside its folder; the attempt was not started"
            )
        members.append(member)
        total += member.size if member.isfile() else 0
        if total > max_bytes or len(members) > MAX_MEMBERS:
            raise WorkDirError(
                f"the job's last checkpoint unpacks to more than {max_bytes} bytes or "
                f"{MAX_MEMBERS} files, more than the job's disk allows"
            )
    return members


def _add_file(tar: tarfile.TarFile, dir_fd: int, name: str, relative: str) -> None:
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return  # a link (ELOOP), a removed file: not part of the checkpoint
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        os.set_blocking(fd, True)
        member = tarfile.TarInfo(relative)
        member.size = info.st_size
        member.mtime = int(info.st_mtime)
        member.mode = stat.S_IMODE(info.st_mode) & 0o755
        tar.addfile(member, file)
