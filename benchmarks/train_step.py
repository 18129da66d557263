"""Times the train step of any config: compile time, then steps/s and examples/s.

    python benchmarks/train_step.py --config configs/genviews.py:smoke [--steps 20] \
        [--config.train.batch_size=128 ...] [--fold_frozen] [--profile]

It compiles with the CPU settings that train.py makes (XLA:CPU flags, glibc malloc options;
README: Speed). Prints one JSON line: the seconds to lower and compile the step, the
compiled program's size (XLA's memory analysis: generated code, arguments, temporaries),
the speed of `--steps` steps of that executable, the page faults per step, the last loss
and the process's peak resident memory. Uses the same task, runner and host batches as the
training loop (tasks/loop.py). `--fold_frozen` compiles the task's frozen inputs (a
generator's parameters) into the program as constants instead of passing them as an
argument, as genviews did until commit 22c2ff1: the two compared. For generated views
(data.source=generator) it also times the views alone (the task's make_views, jitted,
images only), alternated with blocking calls of the step, and prints their share of it.

`--profile` also traces `--steps` steps with JAX's profiler and prints, before the JSON
line, where the step's time goes (and the views', when it times them): milliseconds per
call (summed over XLA's threads) for each kind of XLA operation of the compiled program
(its instruction names without their numeric suffix, so that `convolution-base-dilated.1`
and `.2` add up; the forward convolutions are `conv_general_dilated`), read from the
trace's XPlane file.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import tasks  # noqa: E402
from tasks.parallel import Runner, set_cpu_flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command's flags, defined only when it runs as a program (tests import op_times)."""
    config_flags.DEFINE_config_file("config", None, "experiment config file[:args]")
    flags.DEFINE_integer("steps", 20, "timed steps after the first one")
    flags.DEFINE_bool("fold_frozen", False, "fold the frozen inputs into the program")
    flags.DEFINE_bool("profile", False, "print the step's time per kind of XLA operation")


def main(argv) -> None:
    del argv
    malloc_options = set_cpu_flags()  # as train.py does, before JAX starts its backend
    config = FLAGS.config
    task = tasks.get(config)
    step, frozen = task.step, task.frozen
    if FLAGS.fold_frozen:  # the step reads the parameters from its closure: XLA constants
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
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.time()
    for _ in range(FLAGS.steps):
        state, metrics = compiled(state, runner.put_batch(next(batches)), runner.frozen)
    jax.block_until_ready(metrics)
    seconds = time.time() - start
    faults_per_step = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before) / FLAGS.steps
    if FLAGS.profile:
        held = [state]  # the step donates its state: each call takes the last one's

        def run():
            held[0], metrics = compiled(held[0], batch, runner.frozen)
            jax.block_until_ready(metrics)

        kinds = op_times(run, FLAGS.steps)
        state = held[0]
        _print_op_times("the step", kinds)
    views = {}
    if config.task == "contrastive" and config.data.source == "generator":
        views = _views_share(task, runner, compiled, state, batch)
    mb = lambda name: round(getattr(memory, name, 0) / 2**20, 1) if memory else None  # noqa: E731
    print(json.dumps({
        "config": sys.argv[sys.argv.index("--config") + 1] if "--config" in sys.argv else "",
        "task": config.task, "devices": runner.num_devices, "backend": jax.default_backend(),
        "batch_size": config.train.batch_size, "fold_frozen": FLAGS.fold_frozen,
        "compile_s": round(compile_s, 2), "code_mb": mb("generated_code_size_in_bytes"),
        "argument_mb": mb("argument_size_in_bytes"), "temp_mb": mb("temp_size_in_bytes"),
        "steps_per_s": round(FLAGS.steps / seconds, 3),
        "examples_per_s": round(FLAGS.steps * config.train.batch_size / seconds, 1),
        "page_faults_per_step": round(faults_per_step),
        "loss": runner.metrics(metrics).get("loss"), "malloc_options": malloc_options,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024, **views}))


def _views_share(task, runner, compiled, state, batch) -> dict:
    """Median seconds of the views alone and of the whole step (each call blocking),
    alternated over --steps calls, and the views' share of the step."""
    index = batch["index"]  # the timed step's examples
    make = jax.jit(lambda frozen, index: task.make_views(0, index, frozen=frozen)["image"])
    jax.block_until_ready(make(runner.frozen, index))
    if FLAGS.profile:
        _print_op_times("the views alone", op_times(
            lambda: jax.block_until_ready(make(runner.frozen, index)), FLAGS.steps))
    views_s, step_s = [], []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        jax.block_until_ready(make(runner.frozen, index))
        views_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        state, metrics = compiled(state, batch, runner.frozen)  # the state is donated
        jax.block_until_ready(metrics)
        step_s.append(time.perf_counter() - start)
    v, s = statistics.median(views_s), statistics.median(step_s)
    return {"views_s": round(v, 4), "step_s": round(s, 4), "views_share": round(v / s, 3)}


def _print_op_times(what: str, kinds: dict[str, float]) -> None:
    print(f"{'ms/call':>9}  XLA operation (kind) of {what}   [{sum(kinds.values()):.0f} ms in all]")
    for kind, ms in sorted(kinds.items(), key=lambda kv: -kv[1])[:25]:
        print(f"{ms:9.1f}  {kind}")


def op_times(run, calls: int) -> dict[str, float]:
    """Milliseconds per call of each kind of XLA operation that `run()` executes, averaged
    over `calls` traced calls: the durations of the trace's events on XLA's threads that
    name an instruction (not the runtime's spans, such as `ThunkExecutor::Execute` or
    `end: fusion`), keyed by instruction name without its numeric suffix. (The XPlane
    protobuf comes with TensorFlow, a dependency of TFDS.)"""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    run()  # compiled and warm before tracing
    with tempfile.TemporaryDirectory() as trace_dir:
        jax.profiler.start_trace(trace_dir)
        try:
            for _ in range(calls):
                run()
        finally:
            jax.profiler.stop_trace()
        space = xplane_pb2.XSpace()
        with open(glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)[0],
                  "rb") as f:
            space.ParseFromString(f.read())
    totals = collections.Counter()
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if "XLA" not in line.name:  # the executor's threads, not Python's
                continue
            for event in line.events:
                name = names.get(event.metadata_id, "")
                if re.fullmatch(r"[\w.-]+", name):  # an instruction, not a runtime span
                    totals[re.sub(r"\.\d+$", "", name)] += event.duration_ps / 1e9 / calls
    return dict(totals)


if __name__ == "__main__":
    define_flags()
    app.run(main)
