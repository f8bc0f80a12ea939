"""Atomic writes that respect what the user pointed at, and streamed hashing."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from model_bisect.files import (
    BoundedReadError,
    FileKind,
    NotRegularFileError,
    ReadProblem,
    TooLargeError,
    file_sha256,
    read_bounded,
    read_bytes_bounded,
    read_text_bounded,
    special_file_kind,
    write_bytes_atomic,
    write_text_atomic,
)

POSIX_ONLY = pytest.mark.skipif(os.name != "posix", reason="needs POSIX file modes and FIFOs")


def test_text_lands_whole_and_replaces_the_old_content(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text("old content that is longer than the new one\n", encoding="utf-8")
    write_text_atomic(path, "nouveau été\n")
    assert path.read_bytes() == "nouveau été\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_missing_parent_folders_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.bin"
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"


@POSIX_ONLY
def test_symlink_survives_and_its_target_gets_the_data(tmp_path: Path) -> None:
    real = tmp_path / "real" / "data.json"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_text_atomic(link, "new")
    assert link.is_symlink()
    assert os.readlink(link) == str(real)
    assert real.read_text() == "new"
    assert sorted(p.name for p in real.parent.iterdir()) == ["data.json"]  # temp beside target
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real"]


@POSIX_ONLY
def test_dangling_symlink_creates_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "made.txt")
    write_text_atomic(link, "hello")
    assert link.is_symlink()
    assert (tmp_path / "made.txt").read_text() == "hello"


@POSIX_ONLY
def test_fifo_is_written_into_not_replaced(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_bytes_atomic(fifo, b"through the pipe")
    reader.join(timeout=10)
    assert received == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


@POSIX_ONLY
def test_dev_null_is_written_into_not_replaced() -> None:
    write_text_atomic(Path(os.devnull), "discarded")
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)


@POSIX_ONLY
def test_dev_stdout_of_a_real_process_receives_the_text(tmp_path: Path) -> None:
    # stdout is a pipe here, the case where /dev/stdout resolves to no path at all.
    code = (
        "from pathlib import Path; from model_bisect.files import write_text_atomic; "
        "write_text_atomic(Path('/dev/stdout'), 'to the pipe\\n')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "to the pipe\n"


@POSIX_ONLY
def test_new_file_gets_the_umask_mode_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_text_atomic(tmp_path / "new.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640


@POSIX_ONLY
def test_existing_file_keeps_its_mode(tmp_path: Path) -> None:
    path = tmp_path / "script.sh"
    path.write_text("old")
    path.chmod(0o751)
    write_text_atomic(path, "new")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o751
    assert path.read_text() == "new"


def test_temporary_file_is_removed_when_the_write_fails(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_text("kept")
    with pytest.raises(TypeError):  # fails in write(), after the temporary file exists
        write_bytes_atomic(path, "not bytes")  # type: ignore[arg-type]
    assert path.read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_folder_in_the_way_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "folder-in-the-way"
    target.mkdir()
    with pytest.raises(IsADirectoryError):
        write_text_atomic(target, "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder-in-the-way"]


def test_file_sha256_matches_hashlib_over_several_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


@POSIX_ONLY
@pytest.mark.timeout(20)
@pytest.mark.parametrize("kind", ["fifo", "dev_zero_link", "directory"])
def test_hashing_or_reading_a_special_file_is_refused_not_blocked(
    tmp_path: Path, kind: str
) -> None:
    path = tmp_path / "special"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to("/dev/zero")
    with pytest.raises(NotRegularFileError) as exc:
        file_sha256(path)
    assert exc.value.kind in ("a FIFO", "a character device", "a directory")
    with pytest.raises(NotRegularFileError):
        read_bytes_bounded(path, 100)


def test_a_bounded_read_refuses_a_file_over_its_bound(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 101)
    assert read_bytes_bounded(path, 101) == b"x" * 101
    with pytest.raises(TooLargeError):
        read_bytes_bounded(path, 100)


def test_a_bounded_read_of_a_small_file_works_under_an_address_space_limit(
    tmp_path: Path,
) -> None:
    # read(limit + 1) would reserve the 2 GiB limit up front: MemoryError under `ulimit -v`.
    path = tmp_path / "small.onnx"
    path.write_bytes(b"onnx" * 1000)
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from pathlib import Path\n"
        "from model_bisect.files import read_bytes_bounded\n"
        "data = read_bytes_bounded(Path(sys.argv[1]), (2 << 30) - 1)\n"
        "print(len(data))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "4000"


def test_a_bounded_read_follows_a_file_that_grew_after_its_size_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing"
    data = os.urandom(3 << 20)
    path.write_bytes(data)
    real = os.fstat

    def stale(fd: int) -> os.stat_result:  # the size before the writer appended
        info = real(fd)
        return os.stat_result((*info[:6], 10, *info[7:]))

    monkeypatch.setattr(os, "fstat", stale)
    assert read_bytes_bounded(path, 3 << 20) == data
    with pytest.raises(TooLargeError):
        read_bytes_bounded(path, (3 << 20) - 1)


_WORDING = {
    ReadProblem.MISSING: "no {noun}",
    ReadProblem.NOT_REGULAR: "{noun} is {detail}",
    ReadProblem.TOO_LARGE: "{noun} too big",
    ReadProblem.UNREADABLE: "bad {noun} ({detail})",
}


@POSIX_ONLY
def test_every_way_a_bounded_read_fails_is_one_error_its_reader_words(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    (tmp_path / "big").write_bytes(b"x" * 11)
    (tmp_path / "latin1").write_bytes("été".encode("latin-1"))
    cases = [
        (tmp_path / "gone", read_bounded, ReadProblem.MISSING, "no sidecar"),
        (fifo, read_bounded, ReadProblem.NOT_REGULAR, "sidecar is a FIFO"),
        (tmp_path, read_bounded, ReadProblem.NOT_REGULAR, "sidecar is a directory"),
        (tmp_path / "big", read_bounded, ReadProblem.TOO_LARGE, "sidecar too big"),
        (Path("nul\0name"), read_bounded, ReadProblem.UNREADABLE, "bad sidecar (ValueError)"),
        (
            tmp_path / "latin1",
            read_text_bounded,
            ReadProblem.UNREADABLE,
            "bad sidecar (UnicodeDecodeError)",
        ),
    ]
    for path, read, problem, words in cases:
        with pytest.raises(BoundedReadError) as raised:
            read(path, 10)
        assert raised.value.problem is problem, path
        assert raised.value.worded(_WORDING, noun="sidecar") == words


def test_a_bounded_read_within_its_bound_returns_the_bytes_and_the_text(tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_bytes("été".encode())
    assert read_bounded(path, len("été".encode())) == "été".encode()
    assert read_text_bounded(path, 10) == "été"


@POSIX_ONLY
def test_special_file_kinds_are_enum_members_that_read_as_their_words(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert special_file_kind(os.stat(fifo)) is FileKind.FIFO
    assert special_file_kind(os.stat(tmp_path)) is FileKind.DIRECTORY
    assert special_file_kind(os.stat("/dev/null")) is FileKind.CHARACTER_DEVICE
    assert f"{FileKind.FIFO}" == "a FIFO"
    path = tmp_path / "f"
    path.write_bytes(b"")
    assert special_file_kind(os.stat(path)) is None
