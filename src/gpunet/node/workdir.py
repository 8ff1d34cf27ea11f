"""An attempt's work dir: inputs in, outputs out, and nothing read from outside it.

Each attempt runs in ``<work root>/<job id>-<attempt>/``, made fresh. The job runs there
(as an unprivileged user when the agent is root), so by the time the node reads its
outputs the job may have planted symbolic links to any file of the host. Every read goes
through ``read_beneath``, which opens each path component with ``O_NOFOLLOW`` relative to
the folder above it: a link anywhere in the path makes the read fail instead of leaking
the file it points to.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from gpunet.api.jobs import FileRef
from gpunet.errors import GpunetError

MAX_OUTPUTS = 1000  # FinishIn takes at most this many
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


class WorkDirError(GpunetError):
    """The work dir cannot be prepared safely: a bad input, path or checkpoint."""


def fresh_work_dir(root: Path, job_id: str, attempt: int) -> Path:
    """An empty ``root/<job_id>-<attempt>/``; what an earlier run left there is removed."""
    folder = root / f"{job_id}-{attempt}"
    if folder.exists() or folder.is_symlink():
        remove_work_dir(folder)
    root.mkdir(parents=True, exist_ok=True)
    folder.mkdir(mode=0o700)
    return folder


def remove_work_dir(folder: Path) -> None:
    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder, ignore_errors=True)


def relative_parts(path: str) -> tuple[str, ...]:
    """``path`` split into parts; WorkDirError if it is absolute or climbs with ``..``."""
    pure = PurePosixPath(path)
    parts = tuple(part for part in pure.parts if part != ".")
    if pure.is_absolute() or not parts or ".." in parts or "\0" in path:
        raise WorkDirError(f"path {path!r} would leave the job's work dir; refusing it")
    return parts


def write_input(work_dir: Path, ref: FileRef, data: bytes) -> Path:
    """Check ``data`` against ``ref`` and write it at ``ref.path`` under ``work_dir``."""
    digest = hashlib.sha256(data).hexdigest()
    if digest != ref.sha256 or len(data) != ref.size:
        raise WorkDirError(
            f"input {ref.path!r} arrived with SHA-256 {digest} ({len(data)} bytes), but the "
            f"job names {ref.sha256} ({ref.size} bytes); the file was changed or corrupted "
            "on the way, so the job was not run"
        )
    target = work_dir.joinpath(*relative_parts(ref.path))
    _check_no_links(work_dir, target.parent)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        raise WorkDirError(f"input {ref.path!r} is given twice or clashes with another input")
    target.write_bytes(data)
    return target


def make_folder(work_dir: Path, relative: str) -> Path:
    """Create ``relative`` (a checkpoint folder) under ``work_dir``, refusing escapes."""
    folder = work_dir.joinpath(*relative_parts(relative))
    _check_no_links(work_dir, folder)
    if folder.exists() and not folder.is_dir():
        raise WorkDirError(f"{relative!r} is a file, not a folder; it cannot hold checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def find_outputs(work_dir: Path, patterns: Sequence[str]) -> list[str]:
    """Relative paths of the regular files under ``work_dir`` that match ``patterns``.

    Sorted, each once, at most ``MAX_OUTPUTS``; symbolic links are never listed.
    """
    found: set[str] = set()
    for pattern in patterns:
        relative_parts(pattern)
        for match in work_dir.glob(pattern):
            with contextlib.suppress(OSError, ValueError):
                relative = match.relative_to(work_dir)
                if stat.S_ISREG(match.lstat().st_mode) and not _through_link(work_dir, relative):
                    found.add(relative.as_posix())
    return sorted(found)[:MAX_OUTPUTS]


def read_beneath(work_dir: Path, relative: str) -> bytes:
    """The bytes of the regular file ``relative``, never following a link on the way."""
    parts = relative_parts(relative)
    fds = [os.open(work_dir, _DIR_FLAGS)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        fds.append(os.open(parts[-1], _FILE_FLAGS, dir_fd=fds[-1]))
        if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
            raise WorkDirError(f"output {relative!r} is not a regular file")
        os.set_blocking(fds[-1], True)
        with os.fdopen(os.dup(fds[-1]), "rb") as file:
            return file.read()
    finally:
        for fd in fds:
            os.close(fd)


def file_ref(path: str, data: bytes) -> FileRef:
    return FileRef(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _through_link(work_dir: Path, relative: Path) -> bool:
    """Whether a folder on the way to ``relative`` is a link (glob follows those)."""
    current = work_dir
    for part in relative.parts[:-1]:
        current = current / part
        if current.is_symlink():
            return True
    return False


def _check_no_links(work_dir: Path, folder: Path) -> None:
    current = work_dir
    for part in folder.relative_to(work_dir).parts:
        current = current / part
        if current.is_symlink():
            raise WorkDirError(f"{current.relative_to(work_dir)} is a link; refusing to write")
