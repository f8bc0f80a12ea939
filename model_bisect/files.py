"""Writing and hashing files: the one place that knows how to replace a file safely.

Readers (a nightly job, a second process sharing the evaluation cache) must never see half a
file, so every write goes through a temporary sibling and ``os.replace``. What the user pointed
us at must also survive: a symlink stays a symlink, ``/dev/stdout`` stays a device, and a
file keeps its permissions.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["file_sha256", "write_bytes_atomic", "write_text_atomic"]

_NEW_FILE_MODE = 0o666  # the kernel applies the umask, as for any file the user creates


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file, streamed, so a large model or cache never sits in memory."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """``write_bytes_atomic`` of the UTF-8 encoding of ``text``."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once; missing parent folders are created.

    A symlink is followed (the link survives and its target gets the data); a target that
    exists but is not a regular file (a FIFO, ``/dev/stdout``) is written straight into,
    since it cannot be replaced. A new file gets the umask's mode, an existing one keeps its.
    """
    try:
        info: os.stat_result | None = os.stat(path)  # follows links, /proc/self/fd ones too
    except FileNotFoundError:
        info = None
    if info is not None and not stat.S_ISREG(info.st_mode):
        with open(path, "wb") as stream:
            stream.write(data)
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _create_sibling(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            if info is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _create_sibling(target: Path) -> tuple[int, Path]:
    """A new hidden file beside ``target`` (same folder, so the rename cannot cross devices).

    Not ``tempfile.mkstemp``: its 0600 would become the final file's mode.
    """
    while True:
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return os.open(candidate, flags, _NEW_FILE_MODE), candidate
        except FileExistsError:
            continue
