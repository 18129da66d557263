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
import ctypes, resource, threading
from tasks import parallel
print(parallel.set_cpu_flags())
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
size, faults = 64 << 20, []

def step():  # a step's worth of memory, written and freed, in a thread as XLA's are
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)

for _ in range(3):
    thread = threading.Thread(target=step)
    thread.start()
    thread.join()
print(faults)
"""


@pytest.mark.skipif(not parallel.glibc(), reason="genviews' malloc options are glibc's")
def test_memory_freed_after_a_step_is_reused_unless_the_user_tunes_malloc():
    def run(**variables):
        env = {k: v for k, v in os.environ.items()
               if k != "GLIBC_TUNABLES" and k not in parallel.MALLOC_VARIABLES}
        out = subprocess.run([sys.executable, "-c", _FAULTS], cwd=ROOT, env={**env, **variables},
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        applied, faults = out.stdout.strip().splitlines()[-2:]
        return applied == "True", ast.literal_eval(faults)

    pages = (64 << 20) // resource.getpagesize()
    # genviews' options: the freed block is the next one (a stray fault or two allowed).
    applied, faults = run()
    assert applied and all(f < pages // 100 for f in faults[1:]), faults
    # A user who tunes malloc keeps glibc's defaults: the block is mapped afresh every time
    # (fewer faults than pages where the kernel backs it with huge pages, never none).
    for variables in ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=4096"},
                      {"MALLOC_ARENA_MAX": "8"}):
        applied, faults = run(**variables)
        assert not applied and all(f > 0 for f in faults), (variables, faults)
