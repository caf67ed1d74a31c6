"""Keep freed CPU memory for reuse: the allocator setting that makes caching every activation cheap on CPU.

`run_with_cache` keeps every activation alive, so one call allocates hundreds of MB. glibc serves such blocks with
fresh mmaps and gives memory back to the OS when the cache is freed, so the next call page-faults it in again; that,
more than arithmetic, is what caching costs on CPU (benchmarks/hook_overhead.py: cache everything 1.6-1.7x a plain
forward by default, about 1.2x with this setting). Raising glibc's mmap and trim thresholds (mallopt(3)) keeps the
memory in the heap for reuse, at the price of a resident size that does not shrink after a large cache is freed.
Process-wide, so it is opt-in. Linux with glibc only; elsewhere it returns False and changes nothing.
"""

from __future__ import annotations

import ctypes
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def keep_freed_memory(limit_bytes: int = 2**31 - 1) -> bool:
    """Serve blocks up to `limit_bytes` from the heap and never trim it below that; True if glibc took both."""
    if not 0 < limit_bytes < 2**31:
        raise ValueError(f"limit_bytes={limit_bytes} must be in (0, 2**31) (mallopt takes a C int)")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit_bytes)) and bool(libc.mallopt(M_TRIM_THRESHOLD, limit_bytes))
