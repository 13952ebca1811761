"""Keep freed memory in the process instead of returning it to the kernel after every batch.

glibc serves each allocation above its mmap threshold (128 kB, raised on the fly only up to
the sizes already freed) with a fresh ``mmap``, and gives it back with ``munmap`` on free:
a CNN's activations and gradients, 1-50 MB each and freed every step, then cost a page fault
and the zeroing of every 4 kB page, again at each step. On the default jet CNN that was a
third of the CPU time (as system time). Raising the mmap and trim thresholds lets the heap
reuse those blocks; results are unchanged (only where memory comes from changes), and the
process keeps its peak heap instead of shrinking after it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

#: mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
#: glibc's largest allowed mmap threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX).
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024
TOP_PAD = 64 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the thresholds above with glibc's ``mallopt``; False where there is no glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD), (_M_TRIM_THRESHOLD, TRIM_THRESHOLD), (_M_TOP_PAD, TOP_PAD)))
