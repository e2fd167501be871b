"""glibc's malloc keeps freed memory for reuse: a large tensor allocated again maps no new pages."""

import ctypes.util
import os
import subprocess
import sys

import pytest

from contrastkit.training import malloc

# In a fresh process: allocate and free a 24 MB tensor, then count the page faults of allocating
# and filling a 16 MB one (4,096 pages of 4 KiB when the freed memory was given back).
PROBE = """
import resource, sys, torch
from contrastkit.training.malloc import keep_freed_memory
kept = keep_freed_memory()
torch.ones(6 * 2**20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.ones(4 * 2**20).sum()
print(int(kept), resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""

glibc = pytest.mark.skipif(
    sys.platform != "linux" or "libc.so" not in str(ctypes.util.find_library("c")),
    reason="glibc's mallopt",
)


def _probe(setting: str) -> tuple[bool, int]:
    env = os.environ | {malloc.ENV: setting, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    kept, faults = done.stdout.split()
    return kept == "1", int(faults)


@glibc
def test_a_freed_tensor_is_reused_without_new_page_faults():
    kept, faults = _probe("")
    assert kept and faults < 1000
    kept, faults = _probe("system")  # glibc's defaults: the memory went back to the kernel
    assert not kept and faults > 3000


def test_the_setting_can_be_refused(monkeypatch):
    monkeypatch.setenv(malloc.ENV, "System ")
    assert malloc.keep_freed_memory() is False
