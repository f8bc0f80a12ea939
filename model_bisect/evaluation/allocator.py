"""glibc's malloc told to give large freed blocks back to the system at once, for big data.

By default glibc raises its mmap threshold to the size of each large block freed (up to
32 MB), so later blocks below that size come from the heap, and what is freed there stays
resident: at 10M rows one model's inference left about 30 MB in the process through the
whole search, 0.11 times the float32 data, on top of the search's peak. A fixed threshold of
1 MiB keeps that from happening; smaller blocks (the 512 KB float64 chunks of every sum) stay
in the heap. The price is a page fault per page of every larger block, about 10% of the wall
time of a 200k-row scan but about 1% at 10M rows, so it is set only where the data is large.
Elsewhere (macOS, Windows, musl) nothing changes.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["MIN_ROWS", "MMAP_THRESHOLD", "return_large_blocks"]

MIN_ROWS = 1 << 21  # rows from which the memory is worth the page faults
MMAP_THRESHOLD = 1 << 20  # bytes: blocks this large are mapped, and unmapped when freed
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number, from glibc's malloc.h
_lock = threading.Lock()
_done: list[bool] = []


def return_large_blocks(rows: int) -> bool:
    """For ``rows`` of at least MIN_ROWS, set glibc's mmap threshold (once per process);
    whether it is set."""
    with _lock:
        if not _done and rows >= MIN_ROWS:
            _done.append(_set_threshold())
        return bool(_done and _done[0])


def _set_threshold() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION") or ""
    except (ValueError, OSError):  # not glibc: the name is unknown there
        return False
    if not libc.startswith("glibc"):
        return False
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
