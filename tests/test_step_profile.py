"""benchmarks/train_step.py --profile: the time per kind of XLA operation it reads from a
JAX profiler trace names the compiled program's own instructions and adds up to the time
the calls took."""

from __future__ import annotations

import os
import re
import sys
import time

import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from train_step import op_times  # noqa: E402


def test_op_times_are_the_programs_instructions_and_fill_its_wall_time():
    def f(x, w, m):  # a convolution, an elementwise op and a matmul, each waiting on the last
        y = jax.nn.relu(jax.lax.conv_general_dilated(x, w, (1, 1), "SAME"))
        return jnp.tanh(y.reshape(y.shape[0], -1)[:, :512] @ m)

    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    args = (jax.random.normal(keys[0], (64, 8, 32, 32)), jax.random.normal(keys[1], (64, 8, 3, 3)),
            jax.random.normal(keys[2], (512, 512)))
    compiled = jax.jit(f).lower(*args).compile()
    instructions = {re.sub(r"\.\d+$", "", m) for m in
                    re.findall(r"%([\w.-]+) = ", compiled.as_text())}
    durations = []

    def run():  # op_times calls it once to warm up, then 3 times traced
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        durations.append(time.perf_counter() - start)

    kinds = op_times(run, 3)
    wall_ms = sum(durations[1:]) / 3 * 1e3  # the traced calls' own wall time
    assert kinds and set(kinds) <= instructions, set(kinds) - instructions
    # The ops run one after another, so their summed time is most of the same calls' wall
    # time (the rest is dispatch and tracing; 0.94-0.98 measured here) and not more than it.
    assert 0.5 * wall_ms < sum(kinds.values()) < 1.2 * wall_ms, (kinds, wall_ms)
