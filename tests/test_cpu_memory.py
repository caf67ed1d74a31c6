"""cpu_memory: freed activation memory stays in the process for reuse, by default after `run_with_cache` on CPU and
never with PROBE_KEEP_FREED_MEMORY=0 (each check in a fresh process, since the setting is process-wide)."""

import os
import subprocess
import sys

import pytest

from probe.cpu_memory import keep_freed_memory

SCRIPT = """
import sys, torch
from probe import Transformer, TransformerConfig, cpu_memory
if sys.argv[1] == "keep":
    took = cpu_memory.keep_freed_memory()
else:  # what run_with_cache sets up
    model = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=1, d_vocab=5, n_ctx=4))
    model.run_with_cache(torch.zeros(1, 4).long())
    took = cpu_memory.for_caching()
rss = lambda: int(open("/proc/self/statm").read().split()[1]) * 4096
before = rss()
x = torch.ones(64 * 2**20 // 4)  # 64 MiB, touched
del x
print(took, (rss() - before) / 2**20)
"""


def kept_after_free(mode: str, **env: str) -> tuple[str, float]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    took, kept_mib = out.stdout.split()
    return took, float(kept_mib)


linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt exists on Linux only")


@linux
def test_keep_freed_memory_keeps_a_freed_block_resident():
    took, kept = kept_after_free("keep")
    assert took == "True" and kept > 48  # the 64 MiB block stayed in the heap


@linux
def test_run_with_cache_keeps_freed_memory_unless_turned_off():
    took, kept = kept_after_free("cache", PROBE_KEEP_FREED_MEMORY="1")
    assert took == "True" and kept > 48
    took, kept = kept_after_free("cache", PROBE_KEEP_FREED_MEMORY="0")
    assert took == "False" and kept < 16  # glibc's defaults: the block went back to the OS


def test_bad_settings_are_named(monkeypatch):
    with pytest.raises(ValueError, match="limit_bytes"):
        keep_freed_memory(2**31)
    from probe import cpu_memory

    monkeypatch.setattr(cpu_memory, "_applied", None)
    monkeypatch.setenv("PROBE_KEEP_FREED_MEMORY", "yes")
    with pytest.raises(ValueError, match="PROBE_KEEP_FREED_MEMORY='yes'"):
        cpu_memory.for_caching()
