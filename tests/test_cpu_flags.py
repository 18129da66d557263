"""genviews' CPU settings (XLA:CPU flags, glibc malloc options) never override a user's own."""

from __future__ import annotations

import ast
import os
import resource
import subprocess
import sys

import pytest

from tasks import parallel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_flags_are_added_and_the_users_own_are_kept(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    parallel.set_cpu_flags()
    assert os.environ["XLA_FLAGS"].split() == list(parallel.CPU_XLA_FLAGS)
    mine = "--xla_force_host_platform_device_count=4 --xla_cpu_experimental_ynn_fusion_type=all"
    monkeypatch.setenv("XLA_FLAGS", mine)
    parallel.set_cpu_flags()
    assert os.environ["XLA_FLAGS"] == mine
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
    parallel.set_cpu_flags()
    assert os.environ["XLA_FLAGS"].split() == ["--xla_force_host_platform_device_count=4",
                                               *parallel.CPU_XLA_FLAGS]


_FAULTS = """
import ctypes, resource
from tasks import parallel
parallel.set_cpu_flags()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
size, faults = 64 << 20, []
for _ in range(3):  # a step's worth of memory, written and freed, three times
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults)
"""


@pytest.mark.skipif("glibc" not in (getattr(os, "confstr", lambda _: "")("CS_GNU_LIBC_VERSION") or ""),
                    reason="genviews' malloc options are glibc's")
def test_memory_freed_after_a_step_is_reused_unless_the_user_tunes_malloc():
    def faults(tunables):
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        env.update({"GLIBC_TUNABLES": tunables} if tunables is not None else {})
        out = subprocess.run([sys.executable, "-c", _FAULTS], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        return ast.literal_eval(out.stdout.strip().splitlines()[-1])

    pages = (64 << 20) // resource.getpagesize()
    assert faults(None)[1:] == [0, 0]  # genviews' options: the freed block is the next one
    # The user's own glibc.malloc tunable keeps glibc's default: a fresh mapping each time.
    assert all(f >= pages for f in faults("glibc.malloc.mmap_threshold=4096"))
