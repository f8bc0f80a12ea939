"""glibc's mmap threshold is fixed only for large data, once per process."""

from __future__ import annotations

import os
import subprocess
import sys

_SCRIPT = """
import sys
from model_bisect.evaluation import allocator
print(allocator.return_large_blocks(allocator.MIN_ROWS - 1))
print(allocator.return_large_blocks(allocator.MIN_ROWS))
print(allocator.return_large_blocks(1))
"""


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def test_the_threshold_is_set_from_min_rows_and_stays_set() -> None:
    # A fresh process: the setting is process-wide and cannot be undone.
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True
    )
    on = "True" if sys.platform.startswith("linux") and _glibc() else "False"
    assert done.stdout.split() == ["False", on, on]
