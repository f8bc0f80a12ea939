"""Writing and hashing files: the one place that knows how to replace a file safely.

Readers (a nightly job, a second process sharing the evaluation cache) must never see half a
file, so every write goes through a temporary sibling and ``os.replace``. What the user pointed
us at must also survive: a symlink stays a symlink, ``/dev/stdout`` stays a device, and a
file keeps its permissions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterator, Mapping
from enum import Enum, StrEnum
from io import BufferedReader
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "BoundedReadError",
    "FileKind",
    "NotRegularFileError",
    "ReadProblem",
    "TooLargeError",
    "file_sha256",
    "open_atomic",
    "open_regular",
    "read_bounded",
    "read_bytes_bounded",
    "read_text_bounded",
    "special_file_kind",
    "write_bytes_atomic",
    "write_text_atomic",
]

_NEW_FILE_MODE = 0o666  # the kernel applies the umask, as for any file the user creates


class FileKind(StrEnum):
    """What a path is; the value is how a message names it ("is a FIFO")."""

    REGULAR = "a regular file"
    DIRECTORY = "a directory"
    FIFO = "a FIFO"
    CHARACTER_DEVICE = "a character device"
    BLOCK_DEVICE = "a block device"
    SOCKET = "a socket"
    OTHER = "not a regular file"


_KINDS = (
    (stat.S_ISDIR, FileKind.DIRECTORY),
    (stat.S_ISFIFO, FileKind.FIFO),
    (stat.S_ISCHR, FileKind.CHARACTER_DEVICE),
    (stat.S_ISBLK, FileKind.BLOCK_DEVICE),
    (stat.S_ISSOCK, FileKind.SOCKET),
)


class NotRegularFileError(OSError):
    """The path is a FIFO, device, socket or directory: opening or reading it could block
    forever or never end (``/dev/zero``), so nothing untrusted is read from one."""

    def __init__(self, path: Path, kind: FileKind) -> None:
        super().__init__(f"{path} is {kind}, not a regular file")
        self.kind = kind


class TooLargeError(OSError):
    """A file meant to be small (a sidecar, a timeline) is bigger than its bound."""


def special_file_kind(info: os.stat_result) -> FileKind | None:
    """What a non-regular file is (``FileKind.FIFO``, ...), or None for a regular file."""
    if stat.S_ISREG(info.st_mode):
        return None
    for test, kind in _KINDS:
        if test(info.st_mode):
            return kind
    return FileKind.OTHER


class ReadProblem(Enum):
    """Why a bounded read returned nothing: each reader words each one its own way."""

    MISSING = "missing"
    NOT_REGULAR = "not a regular file"
    TOO_LARGE = "too large"
    UNREADABLE = "unreadable"


class BoundedReadError(OSError):
    """``read_bounded`` could not return the bytes. ``detail`` is the kind of a special file
    or the class of the error behind an unreadable one (empty otherwise)."""

    def __init__(self, path: Path, problem: ReadProblem, detail: str = "") -> None:
        super().__init__(f"{path}: {problem.value}" + (f" ({detail})" if detail else ""))
        self.problem = problem
        self.detail = detail

    def worded(self, wording: Mapping[ReadProblem, str], **fields: str) -> str:
        """The reader's own words for this problem; ``{detail}`` and ``fields`` in them are
        filled in."""
        return wording[self.problem].format(detail=self.detail, **fields)


def read_bounded(path: Path, limit: int) -> bytes:
    """``read_bytes_bounded``, with every way the read can fail one ``BoundedReadError``:
    the readers of timelines, sidecars and models map its ``problem`` to their message."""
    try:
        return read_bytes_bounded(path, limit)
    except FileNotFoundError:
        raise BoundedReadError(path, ReadProblem.MISSING) from None
    except NotRegularFileError as exc:
        raise BoundedReadError(path, ReadProblem.NOT_REGULAR, exc.kind.value) from None
    except TooLargeError:
        raise BoundedReadError(path, ReadProblem.TOO_LARGE) from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
        raise BoundedReadError(path, ReadProblem.UNREADABLE, exc.__class__.__name__) from None


def read_text_bounded(path: Path, limit: int) -> str:
    """``read_bounded`` decoded as UTF-8; undecodable bytes are ``ReadProblem.UNREADABLE``."""
    data = read_bounded(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BoundedReadError(path, ReadProblem.UNREADABLE, exc.__class__.__name__) from None


def open_regular(path: Path) -> BufferedReader:
    """Open ``path`` for reading only if it is a regular file, symlinks followed.

    Checked twice: ``os.stat`` before the open (a FIFO blocks in ``open`` itself), then
    ``fstat`` on the descriptor opened non-blocking, so a file swapped in between is caught.
    """
    kind = special_file_kind(os.stat(path))
    if kind is not None:
        raise NotRegularFileError(path, kind)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        kind = special_file_kind(os.fstat(fd))
        if kind is not None:
            raise NotRegularFileError(path, kind)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bytes_bounded(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (``TooLargeError`` beyond);
    reads at most ``limit + 1`` bytes even if the file grows meanwhile.

    Sized from the file, not the limit: ``read(limit + 1)`` would reserve the whole limit
    (2 GiB for a model) up front, which fails under an address-space ulimit or strict
    overcommit however small the file is."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:  # refused on its size: a 3 GiB model must not cost a 2 GiB read
            raise TooLargeError(f"{path} is larger than {limit} bytes")
        chunks = [handle.read(size + 1)]
        total = len(chunks[0])
        while total <= limit:  # a file that grew since fstat: the rest, a chunk at a time
            more = handle.read(min(1 << 20, limit + 1 - total))
            if not more:
                break
            chunks.append(more)
            total += len(more)
    data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    if len(data) > limit:
        raise TooLargeError(f"{path} is larger than {limit} bytes")
    return data


def file_sha256(path: Path) -> str:
    """Hex sha256 of a regular file, streamed, so a large model or cache never sits in memory
    (``NotRegularFileError`` for a FIFO or device, which could block or never end)."""
    with open_regular(path) as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_text_atomic(path: Path, text: str) -> None:
    """``write_bytes_atomic`` of the UTF-8 encoding of ``text``."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once (``open_atomic``)."""
    with open_atomic(path) as handle:
        handle.write(data)


@contextlib.contextmanager
def open_atomic(path: Path) -> Iterator[BinaryIO]:
    """A binary handle whose bytes replace ``path`` all at once when the block ends without
    an exception (and are discarded otherwise); missing parent folders are created. What is
    too large to build in memory (a tensor cache) is streamed through it.

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
            yield stream
        return
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = _create_sibling(target)
    try:
        with os.fdopen(fd, "wb") as handle:
            if info is not None:
                os.fchmod(handle.fileno(), stat.S_IMODE(info.st_mode))
            yield handle
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
