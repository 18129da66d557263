"""Times the train step of any config: compile time, then steps/s and examples/s.

    python benchmarks/train_step.py --config configs/genviews.py:smoke [--steps 20] \
        [--config.train.batch_size=128 ...]

Prints one JSON line. Uses the same task, runner and host batches as the training loop (tasks/loop.py).
"""

from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import tasks  # noqa: E402
from tasks.parallel import Runner  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", None, "experiment config file[:args]")
_STEPS = flags.DEFINE_integer("steps", 20, "timed steps after the first (compiling) one")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    task = tasks.get(config)
    runner = Runner(task.step, config.parallel, task.frozen)
    state = runner.put_state(task.init_state())
    batches = task.batches(0)
    start = time.time()
    state, metrics = runner(state, runner.put_batch(next(batches)))
    jax.block_until_ready(metrics)
    compile_s = time.time() - start
    start = time.time()
    for _ in range(_STEPS.value):
        state, metrics = runner(state, runner.put_batch(next(batches)))
    jax.block_until_ready(metrics)
    seconds = time.time() - start
    print(json.dumps({
        "config": sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else "",
        "task": config.task, "devices": runner.num_devices, "backend": jax.default_backend(),
        "batch_size": config.train.batch_size, "compile_s": round(compile_s, 2),
        "steps_per_s": round(_STEPS.value / seconds, 3),
        "examples_per_s": round(_STEPS.value * config.train.batch_size / seconds, 1)}))


if __name__ == "__main__":
    app.run(main)
