"""Images/s of the real-data input pipeline, per Grain worker, against the train step it feeds.

    python benchmarks/input_pipeline.py [--config configs/real.py] [--workers 0,1,2] \
        [--batches 30] [--step_batches 3] [--config.data.data_dir=DIR ...]

For the config's dataset and global batch size it times, in one process run:
- `memory`: the previous path, the whole split read into host memory first
  (datasets.load; its load time and size are printed), then batches gathered from it;
- `grain, workers=W` for each W: batches streamed from the array_record source by
  data/pipeline.py, decoded in W worker processes (0: threads of this process);
- the train step of the config on this machine's devices (s/step),
and prints how many workers keep up with the step: ceil(step images/s ÷ images/s of
one worker). One JSON line per measurement, then a table.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
from absl import app, flags  # noqa: E402
from ml_collections import config_flags  # noqa: E402

import tasks  # noqa: E402
from data import datasets, pipeline  # noqa: E402
from tasks.parallel import Runner  # noqa: E402

_CONFIG = config_flags.DEFINE_config_file("config", "configs/real.py", "experiment config file[:args]")
_WORKERS = flags.DEFINE_string("workers", "0,1,2", "comma-separated Grain worker counts to time")
_BATCHES = flags.DEFINE_integer("batches", 30, "batches timed per pipeline, after the first")
_STEP_BATCHES = flags.DEFINE_integer("step_batches", 3, "train steps timed, after the compiling one")


def _time_batches(stream, count: int) -> float:
    """Seconds for `count` batches after the first (which starts workers and fills buffers)."""
    next(stream)
    start = time.perf_counter()
    for _ in range(count):
        next(stream)
    elapsed = time.perf_counter() - start
    stream.close()
    return elapsed


def main(argv) -> None:
    del argv
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # TFDS logs every file it opens at INFO
    c = _CONFIG.value
    c.data.source = "real"
    batch = c.train.batch_size
    size = c.data.load_size or c.data.image_size
    found = datasets.training_source(c.data)
    rows = []

    def report(row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    start = time.perf_counter()
    in_memory = datasets.read_all(found)
    load_s = time.perf_counter() - start
    seconds = _time_batches(pipeline.batches(in_memory, batch, seed=0), _BATCHES.value)
    report({"path": "memory", "workers": 0, "images_per_s": batch * _BATCHES.value / seconds,
            "load_s": load_s, "host_gb": in_memory.images.nbytes / 1e9})
    del in_memory
    for workers in (int(w) for w in _WORKERS.value.split(",")):
        seconds = _time_batches(pipeline.batches(found, batch, seed=0, workers=workers),
                                _BATCHES.value)
        report({"path": "grain", "workers": workers,
                "images_per_s": batch * _BATCHES.value / seconds})

    task = tasks.get(c)
    runner = Runner(task.step, c.parallel, task.frozen)
    state = runner.put_state(task.init_state())
    stream = task.batches(0)
    device_batches = [runner.put_batch(next(stream)) for _ in range(_STEP_BATCHES.value + 1)]
    stream.close()
    state, metrics = runner(state, device_batches[0])
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for b in device_batches[1:]:
        state, metrics = runner(state, b)
    jax.block_until_ready(metrics)
    step_s = (time.perf_counter() - start) / _STEP_BATCHES.value
    one = next((r["images_per_s"] for r in rows if r["path"] == "grain" and r["workers"] == 1), None)
    keep_up = math.ceil(batch / step_s / one) if one else None
    report({"path": "train step", "devices": jax.device_count(), "step_s": step_s,
            "images_per_s": batch / step_s, "workers_to_keep_up": keep_up})

    print(f"\n{c.data.name} ({len(found)} examples, {size} px), global batch {batch}, "
          f"{jax.device_count()} {jax.default_backend()} device(s)")
    print("| path | workers | images/s | before the first batch |\n|---|---:|---:|---|")
    for r in rows:
        first = (f"reads the split into memory: {r['load_s']:.1f} s, {r['host_gb']:.2f} GB"
                 if "load_s" in r else "")
        print(f"| {r['path']} | {r.get('workers', '')} | {r['images_per_s']:.0f} | {first} |")
    print(f"the train step takes {step_s:.3f} s; workers needed to keep up with it: {keep_up}"
          if keep_up else f"the train step takes {step_s:.3f} s")


if __name__ == "__main__":
    app.run(main)
