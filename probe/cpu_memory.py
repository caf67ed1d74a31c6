"""Keep freed CPU memory for reuse: the allocator setting that makes caching every activation cheap on CPU.

`run_with_cache` keeps every activation alive, so one call allocates hundreds of MB. glibc gives memory back to the
OS when the cache is freed (it trims the heap once more than M_TRIM_THRESHOLD is free at its top, and unmaps blocks
above M_MMAP_THRESHOLD), so the next call page-faults it all in again; that, more than arithmetic, is what caching
costs on CPU (benchmarks/hook_overhead.py: cache everything 1.6-1.7x a plain forward with glibc's defaults, about
1.2x with this setting). Raising both thresholds (mallopt(3)) keeps up to `limit_bytes` of freed memory in the heap
for the next call, the way PyTorch's CUDA caching allocator keeps freed GPU blocks.

`HookedModel.run_with_cache` on CPU applies it once per process (`for_caching`); the price is a resident size that
stays up to the limit (1 GiB) above what is live after a large cache is freed. Set PROBE_KEEP_FREED_MEMORY=0 to keep
glibc's defaults. Linux with glibc only; elsewhere nothing changes.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
DEFAULT_LIMIT = 2**30
ENV = "PROBE_KEEP_FREED_MEMORY"
_applied: bool | None = None  # the outcome of `for_caching`, once it has run


def keep_freed_memory(limit_bytes: int = DEFAULT_LIMIT) -> bool:
    """Serve blocks up to `limit_bytes` from the heap and never trim it below that; True if glibc took both."""
    if not isinstance(limit_bytes, int) or not 0 < limit_bytes < 2**31:
        raise ValueError(f"limit_bytes={limit_bytes!r} must be an int in (0, 2**31) (mallopt takes a C int)")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, limit_bytes)) and bool(libc.mallopt(M_TRIM_THRESHOLD, limit_bytes))


def for_caching() -> bool:
    """`keep_freed_memory()` once per process, unless PROBE_KEEP_FREED_MEMORY=0; True if the setting is in force."""
    global _applied
    if _applied is None:
        flag = os.environ.get(ENV, "1")
        if flag not in ("0", "1"):
            raise ValueError(f"{ENV}={flag!r}: expected '1' (keep freed memory, the default) or '0' (glibc defaults)")
        _applied = flag == "1" and keep_freed_memory()
    return _applied
