"""Times the train step of any config: compile time, then steps/s and examples/s.

    python benchmarks/train_step.py --config configs/genviews.py:smoke [--steps 20] \
        [--config.train.batch_size=128 ...] [--fold_frozen]

Prints one JSON line: the seconds to lower and compile the step, the compiled program's
size (XLA's memory analysis: generated code, arguments, temporaries), and the speed of
`--steps` steps of that executable. Uses the same task, runner and host batches as the
training loop (tasks/loop.py). `--fold_frozen` compiles the task's frozen inputs (a
generator's parameters) into the program as constants instead of passing them as an
argument, as genviews did until commit 22c2ff1: the two compared. For generated views
(data.source=generator) it also times the views alone (the task's make_views, jitted,
images only), alternated with blocking calls of the step, and prints their share of it.
"""

from __future__ import annotations

import json
import os
import statistics
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
_STEPS = flags.DEFINE_integer("steps", 20, "timed steps after the first one")
_FOLD = flags.DEFINE_bool("fold_frozen", False, "fold the frozen inputs into the program")


def main(argv) -> None:
    del argv
    config = _CONFIG.value
    task = tasks.get(config)
    step, frozen = task.step, task.frozen
    if _FOLD.value:  # the step reads the parameters from its closure: XLA constants
        step, frozen = (lambda state, batch, _: task.step(state, batch, task.frozen)), None
    runner = Runner(step, config.parallel, frozen)
    state = runner.put_state(task.init_state())
    batches = task.batches(0)
    batch = runner.put_batch(next(batches))
    start = time.time()
    compiled = runner.compile(state, batch)
    compile_s = time.time() - start
    memory = compiled.memory_analysis()
    state, metrics = compiled(state, batch, runner.frozen)
    jax.block_until_ready(metrics)
    start = time.time()
    for _ in range(_STEPS.value):
        state, metrics = compiled(state, runner.put_batch(next(batches)), runner.frozen)
    jax.block_until_ready(metrics)
    seconds = time.time() - start
    views = {}
    if config.task == "contrastive" and config.data.source == "generator":
        views = _views_share(task, runner, compiled, state, batch)
    mb = lambda name: round(getattr(memory, name, 0) / 2**20, 1) if memory else None  # noqa: E731
    print(json.dumps({
        "config": sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else "",
        "task": config.task, "devices": runner.num_devices, "backend": jax.default_backend(),
        "batch_size": config.train.batch_size, "fold_frozen": _FOLD.value,
        "compile_s": round(compile_s, 2), "code_mb": mb("generated_code_size_in_bytes"),
        "argument_mb": mb("argument_size_in_bytes"), "temp_mb": mb("temp_size_in_bytes"),
        "steps_per_s": round(_STEPS.value / seconds, 3),
        "examples_per_s": round(_STEPS.value * config.train.batch_size / seconds, 1), **views}))


def _views_share(task, runner, compiled, state, batch) -> dict:
    """Median seconds of the views alone and of the whole step (each call blocking),
    alternated over --steps calls, and the views' share of the step."""
    index = batch["index"]  # the timed step's examples
    make = jax.jit(lambda frozen, index: task.make_views(0, index, frozen=frozen)["image"])
    jax.block_until_ready(make(runner.frozen, index))
    views_s, step_s = [], []
    for _ in range(_STEPS.value):
        start = time.perf_counter()
        jax.block_until_ready(make(runner.frozen, index))
        views_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        state, metrics = compiled(state, batch, runner.frozen)  # the state is donated
        jax.block_until_ready(metrics)
        step_s.append(time.perf_counter() - start)
    v, s = statistics.median(views_s), statistics.median(step_s)
    return {"views_s": round(v, 4), "step_s": round(s, 4), "views_share": round(v / s, 3)}


if __name__ == "__main__":
    app.run(main)
