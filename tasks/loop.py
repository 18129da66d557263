"""The one training loop, for every task: init or resume, step, log, checkpoint, finish.

`train(config, workdir)` fills the run directory (data/rundir.py: config.json,
metrics.jsonl, checkpoints/). Running it again resumes from the latest
checkpoint; a finished run is not redone. Each process feeds its own rows of
each global batch; the step runs on every device of every process (tasks/parallel.py).
"""

from __future__ import annotations

import math
import os
import time

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp
from tqdm import tqdm

import tasks
from data import rundir
from data.grids import save_grid
from errors import NonFiniteLoss, UserError
from tasks.parallel import Runner
from tasks.validate import validate

# A SIGINT during the step loop is taken at the next step boundary (request_stop): raised from
# the signal handler, KeyboardInterrupt can land inside a callback that swallows it (JAX's
# gc callback does) or inside native code, and the run would then go on or crash.
_in_steps = False
_stop_requested = False


def request_stop() -> bool:
    """For a SIGINT handler: inside the step loop, asks it to stop before its next step and
    returns True; elsewhere (or asked twice) returns False, and the caller raises at once."""
    global _stop_requested
    if not _in_steps or _stop_requested:
        return False
    _stop_requested = True
    return True


def train(config, workdir: str) -> dict:
    """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the last metrics."""
    validate(config, jax.device_count(), jax.process_count())
    task = tasks.get(config)  # loads the generator or the data: bad paths fail here
    workdir = rundir.prepare(workdir)
    leader = jax.process_index() == 0
    if not leader:
        return _train(config, workdir, task, leader)
    with rundir.WorkdirLock(workdir):
        return _train(config, workdir, task, leader)


def _train(config, workdir: str, task, leader: bool) -> dict:
    changed = rundir.changed_keys(workdir, config)
    if changed:
        raise UserError(f"{workdir} was trained with another config: {', '.join(changed)} "
                        f"differ from its {rundir.CONFIG} (only {', '.join(rundir.RESUMABLE)}* "
                        "may change on resume); use a new --workdir")
    runner = Runner(task.step, config.parallel, task.frozen)
    state = jax.device_put(task.init_state(), runner.replicated)
    manager = rundir.checkpoints(workdir, keep=config.train.keep_checkpoints)
    # The newest checkpoint that reads back and matches its digest; a damaged one is
    # renamed STEP.damaged (said in one line) and the one before it is used.
    restored, latest = rundir.restore(manager, jax.tree.map(ocp.utils.to_shape_dtype_struct,
                                                            state),
                                      fallback=True, keep_aside=leader)
    if restored is not None:
        state = restored
    if leader:  # only once the checkpoints are known to fit it
        rundir.write_config(workdir, config)
    start, total = int(state.step), config.train.steps
    writer = rundir.MetricsWriter(workdir, start, leader)
    last: dict = {}
    if latest is None:
        # The initial state is a checkpoint too: step 0 (an untrained encoder) is what
        # a random baseline evaluates, with the same code as a trained one.
        rundir.save(manager, 0, state)
    elif start >= total:
        print(f"{workdir}: already finished at step {start}", flush=True)
    if start and start < total:
        print(f"{workdir}: resuming from step {start}", flush=True)
    if start < total:
        try:
            last = _loop(config, task, runner, manager, writer, state, start, total, leader)
        except KeyboardInterrupt:
            # Let a save in flight finish (or fail) now, not in a thread at interpreter exit.
            manager.wait_until_finished()
            raise
    manager.wait_until_finished()
    final, _ = rundir.restore(manager, jax.tree.map(ocp.utils.to_shape_dtype_struct, state),
                              fallback=False)
    task.finish(final, workdir)
    manager.close()
    return last


def _finite(state) -> bool:
    """Whether every float array of the params, BatchNorm statistics and optimizer state is finite."""
    leaves = [x for x in jax.tree.leaves((state.params, state.batch_stats, state.opt_state))
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating)]
    return bool(jax.device_get(_all_finite(leaves))) if leaves else True


@jax.jit
def _all_finite(leaves: list) -> jax.Array:
    # One compiled reduction per state layout (op by op, each leaf's shape compiled its
    # own isfinite and all: 4 s at a GAN smoke run's first save).
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))


def _loop(config, task, runner, manager, writer, state, start, total, leader) -> dict:
    batches = task.batches(start, jax.process_index(), jax.process_count())
    try:
        return _steps(config, task, runner, manager, writer, state, start, total, leader, batches)
    finally:  # however the loop ends: stop the data pipeline's threads and worker processes now
        batches.close()


def _steps(config, task, runner, manager, writer, state, start, total, leader, batches) -> dict:
    global _in_steps, _stop_requested
    _in_steps, _stop_requested = True, False
    try:
        return _run_steps(config, task, runner, manager, writer, state, start, total, leader,
                          batches)
    finally:
        _in_steps = False


def _run_steps(config, task, runner, manager, writer, state, start, total, leader, batches) -> dict:
    device_state = runner.put_state(state)
    pending: list = []
    last: dict = {}
    mark_step, mark_time = start, time.time()
    with tqdm(total=total, initial=start, disable=not leader, unit="step", dynamic_ncols=True,
              mininterval=1.0) as bar:  # closed however the loop ends, before any message
        for step in range(start, total):
            if _stop_requested:
                raise KeyboardInterrupt
            device_state, metrics = runner(device_state, runner.put_batch(next(batches)))
            pending.append(metrics)
            done = step + 1
            bar.update(1)
            if done % config.train.log_every and done % config.train.ckpt_every and done != total:
                continue
            # Every step's loss since the last check is checked before anything is saved.
            values = [runner.metrics(m) for m in pending]
            pending.clear()
            bad = next((v for v in values if not math.isfinite(v["loss"])), None)
            if bad is not None:
                manager.wait_until_finished()
                raise NonFiniteLoss(
                    f"the loss became {bad['loss']} before step {done}; stopped. The last good "
                    f"checkpoint (step {manager.latest_step()}) is kept in {manager.directory}")
            now = time.time()
            last = dict(values[-1])
            last["examples_per_sec"] = (done - mark_step) * config.train.batch_size / (now - mark_time)
            mark_step, mark_time = done, now
            if done % config.train.log_every == 0 or done == total:
                writer.write(done, last)
                bar.set_postfix(loss=f"{last['loss']:.4f}", ex_s=f"{last['examples_per_sec']:.0f}")
            if done % config.train.ckpt_every == 0 or done == total:
                host_state = runner.get_state(device_state)
                if not _finite(host_state):
                    manager.wait_until_finished()
                    raise NonFiniteLoss(
                        f"the parameters or optimizer state became non-finite before step {done}; "
                        f"stopped without saving them. The newest finite checkpoint (step "
                        f"{manager.latest_step()}) is kept in {manager.directory}")
                rundir.save(manager, done, host_state)
            if config.train.grid_every and done % config.train.grid_every == 0 and done != total \
                    and hasattr(task, "sample_grid") and leader:
                save_grid(os.path.join(manager.directory.parent, f"samples_{done:06d}.png"),
                          task.sample_grid(runner.get_state(device_state)))
    return last
