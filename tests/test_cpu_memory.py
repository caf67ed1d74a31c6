"""keep_freed_memory: freed activation memory stays in the process for reuse (each check in a fresh process,
since the setting is process-wide)."""

import subprocess
import sys

import pytest

from probe.cpu_memory import keep_freed_memory

SCRIPT = """
import sys, torch
from probe.cpu_memory import keep_freed_memory
took = keep_freed_memory() if sys.argv[1] == "keep" else None
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096
before = rss()
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
del x
print(took, (rss() - before) / 2**20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")
def test_freed_memory_stays_resident_only_when_asked():
    def run(mode):
        out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True)
        took, kept_mib = out.stdout.split()
        return took, float(kept_mib)

    took, kept = run("keep")
    assert took == "True" and kept > 48  # the 64 MiB block stayed in the heap
    took, kept = run("default")
    assert took == "None" and kept < 16  # glibc gave it back to the OS


def test_limit_must_fit_a_c_int():
    with pytest.raises(ValueError, match="limit_bytes"):
        keep_freed_memory(2**31)
