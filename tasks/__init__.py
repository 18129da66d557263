"""Kinds of training. Each module defines a task class with the same interface:

    task = Task(config)
    state = task.init_state()                      # TrainState, host-side
    state, metrics = task.step(state, batch)      # per device, named axis parallel.AXIS
    task.batches(start_step, process_index, process_count)  # this process's batch dicts
    task.finish(state, workdir)                   # artefacts: PNG grids, exported generator

`train.py` runs every task with the same loop.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax


@flax.struct.dataclass
class TrainState:
    """What a checkpoint holds: step, trainable params, BatchNorm statistics, optimiser state."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def get(config):
    """The task object for config.task."""
    if config.task == "contrastive":
        from tasks.contrastive import ContrastiveTask
        return ContrastiveTask(config)
    if config.task == "generator":
        from tasks.generator import GeneratorTask
        return GeneratorTask(config)
    if config.task == "steering":
        from tasks.steering import SteeringTask
        return SteeringTask(config)
    raise ValueError(f"config key task: unknown task {config.task!r}")
