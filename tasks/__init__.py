"""Kinds of training. Each module defines a task class with the same interface:

    task = Task(config)
    state = task.init_state()                      # tasks.state.TrainState, host-side
    state, metrics = task.step(state, batch, frozen)  # per device, named axis tasks.parallel.AXIS
    task.frozen                                   # what the step reads but never trains
                                                  # (a generator's parameters), or {}
    task.batches(start_step, process_index, process_count)  # this process's batch dicts
    task.finish(state, workdir)                   # artefacts: PNG grids, exported generator

`tasks/loop.py` runs every task with the same loop; `TASKS` below is the one list
of them (config key task).
"""

from __future__ import annotations

from tasks.classifier import ClassifierTask
from tasks.contrastive import ContrastiveTask
from tasks.forward_forward import ForwardForwardTask
from tasks.generator import GeneratorTask
from tasks.sprites import SpritesTask
from tasks.steering import SteeringTask

TASKS = {"classifier": ClassifierTask, "contrastive": ContrastiveTask,
         "forward_forward": ForwardForwardTask,
         "generator": GeneratorTask, "sprites": SpritesTask, "steering": SteeringTask}


def get(config):
    """The task object for config.task."""
    if config.task not in TASKS:
        raise ValueError(f"config key task: unknown task {config.task!r}")
    return TASKS[config.task](config)
