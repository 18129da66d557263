"""The training entry point: one loop for every task, and for studies.

    python train.py --config configs/FILE.py[:ARGS] --workdir DIR [--config.KEY=VALUE ...]

DIR receives `config.json`, `metrics.jsonl` (and TensorBoard events) and Orbax
`checkpoints/`. Running the same command again resumes from the latest
checkpoint; a finished run is not redone. A study config (one with a `study`
field, e.g. configs/quickstart.py) runs each of its runs into DIR/RUN/ and writes
the comparison (see study.py).

Multi-host: `--coordinator_address HOST:PORT --num_processes N --process_id I`
are passed to `jax.distributed.initialize`; SLURM and TPU pods are detected as
JAX detects them. Each process feeds its own rows of each global batch.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow only decodes data: keep it quiet

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from errors import NonFiniteLoss, UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line; defined only when train.py runs as a program (it is also imported)."""
    config_flags.DEFINE_config_file("config", None, "experiment config file[:args]",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "directory of the run (created if missing)")
    flags.DEFINE_string("coordinator_address", None, "multi-host: HOST:PORT of process 0")
    flags.DEFINE_integer("num_processes", None, "multi-host: number of processes")
    flags.DEFINE_integer("process_id", None, "multi-host: this process's id")
    flags.DEFINE_integer("init_timeout", 300,
                         "multi-host: seconds to wait for every process to connect")


def initialize_distributed(coordinator: str | None, num_processes: int | None,
                           process_id: int | None, timeout: int = 300) -> None:
    """Joins a multi-process job when asked (or when SLURM / a TPU pod says so)."""
    import jax

    if coordinator or num_processes or process_id is not None:
        if not (coordinator and num_processes and process_id is not None):
            raise UserError("multi-host needs all of --coordinator_address, --num_processes and "
                            "--process_id")
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise UserError(f"--process_id={process_id} is out of range for "
                            f"--num_processes={num_processes} (0 ≤ id < N)")
        # Collectives between CPU processes (tests, CPU clusters); GPUs and TPUs ignore it.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        if process_id != 0:
            # JAX aborts the process when the coordinator never answers; say why first.
            _wait_for_coordinator(coordinator, timeout, process_id, num_processes)
        print(f"process {process_id}/{num_processes}: joining the job at {coordinator} "
              f"(waiting up to {timeout} s for every process)", flush=True)
        try:
            jax.distributed.initialize(coordinator, num_processes, process_id,
                                       initialization_timeout=timeout)
        except Exception as e:  # the coordinator never answered, or refused us
            raise UserError(f"could not join the job at {coordinator} as process {process_id} of "
                            f"{num_processes} within {timeout} s: {str(e).splitlines()[0]}") from e
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 or "," in os.environ.get(
            "TPU_WORKER_HOSTNAMES", ""):
        jax.distributed.initialize()


def _wait_for_coordinator(address: str, timeout: int, process_id: int, num_processes: int) -> None:
    """Returns once HOST:PORT accepts connections; a UserError after `timeout` seconds."""
    import socket

    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--coordinator_address={address!r} is not HOST:PORT")
    deadline = time.time() + timeout
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as e:
            if time.time() > deadline:
                raise UserError(f"could not join the job at {address} as process {process_id} of "
                                f"{num_processes} within {timeout} s: the coordinator never "
                                f"answered ({e.strerror or e})") from None
            time.sleep(0.5)


def prepare_workdir(workdir: str) -> str:
    """Creates DIR and checks it is writable, before any compute."""
    workdir = os.path.abspath(workdir)
    try:
        os.makedirs(workdir, exist_ok=True)
        probe = os.path.join(workdir, f".write_test_{os.getpid()}")
        with open(probe, "w") as f:
            f.write("ok")
        os.remove(probe)
    except OSError as e:
        raise UserError(f"workdir {workdir} is not writable: {e.strerror or e}") from None
    return workdir


class MetricsWriter:
    """metrics.jsonl (one JSON object per logged step) and TensorBoard, on process 0 only."""

    def __init__(self, workdir: str, resume_step: int, enabled: bool):
        self.enabled = enabled
        self.path = os.path.join(workdir, "metrics.jsonl")
        self.tb = None
        if not enabled:
            return
        # Lines past the checkpoint we resume from belong to a run that is redone.
        if os.path.exists(self.path):
            with open(self.path) as f:
                kept = [line for line in f if line.strip() and json.loads(line)["step"] <= resume_step]
            with open(self.path, "w") as f:
                f.writelines(kept)
        try:
            from flax.metrics import tensorboard
            self.tb = tensorboard.SummaryWriter(os.path.join(workdir, "tensorboard"))
        except ImportError:  # TensorBoard is optional; metrics.jsonl is the record
            self.tb = None

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.scalar(k, v, step)
            self.tb.flush()


def train(config, workdir: str) -> dict:
    """Trains `config` in `workdir` (resuming if it holds checkpoints); returns the last metrics."""
    import jax
    import orbax.checkpoint as ocp
    from tqdm import tqdm

    import tasks
    from configs.common import validate
    from parallel import Runner

    validate(config, jax.device_count(), jax.process_count())
    task = tasks.get(config)  # loads the generator or the data: bad paths fail here
    workdir = prepare_workdir(workdir)
    leader = jax.process_index() == 0
    if leader:
        with open(os.path.join(workdir, "config.json"), "w") as f:
            f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    runner = Runner(task.step, config.parallel)
    state = jax.device_put(task.init_state(), runner.replicated)
    options = ocp.CheckpointManagerOptions(max_to_keep=config.train.keep_checkpoints, create=True)
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"), options=options)
    latest = manager.latest_step()
    if latest is not None:
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state)
        try:
            state = manager.restore(latest, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(
                f"{workdir}: its checkpoint (step {latest}) does not fit this config's model and "
                f"optimizer (made by another config or an older genviews: {type(e).__name__}); "
                "use a new --workdir") from None
    start, total = int(state.step), config.train.steps
    writer = MetricsWriter(workdir, start, leader)
    last: dict = {}
    if latest is None:
        # The initial state is a checkpoint too: step 0 (an untrained encoder) is what
        # a random baseline evaluates, with the same code as a trained one.
        manager.save(0, args=ocp.args.StandardSave(state))
    elif start >= total:
        print(f"{workdir}: already finished at step {start}", flush=True)
    if start and start < total:
        print(f"{workdir}: resuming from step {start}", flush=True)
    if start < total:
        last = _loop(config, task, runner, manager, writer, state, start, total, tqdm, leader)
    manager.wait_until_finished()
    final = manager.restore(manager.latest_step(), args=ocp.args.StandardRestore(
        jax.tree.map(ocp.utils.to_shape_dtype_struct, state)))
    task.finish(final, workdir)
    manager.close()
    return last


def _loop(config, task, runner, manager, writer, state, start, total, tqdm, leader) -> dict:
    import jax
    import orbax.checkpoint as ocp

    batches = task.batches(start, jax.process_index(), jax.process_count())
    device_state = runner.put_state(state)
    pending: list = []
    last: dict = {}
    mark_step, mark_time = start, time.time()
    bar = tqdm(total=total, initial=start, disable=not leader, unit="step", dynamic_ncols=True,
               mininterval=1.0)
    for step in range(start, total):
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
            bar.close()
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
            manager.save(done, args=ocp.args.StandardSave(runner.get_state(device_state)))
        if config.train.grid_every and done % config.train.grid_every == 0 and done != total \
                and hasattr(task, "sample_grid") and leader:
            from evaluators import plots
            plots.save_grid(os.path.join(manager.directory.parent, f"samples_{done:06d}.png"),
                            task.sample_grid(runner.get_state(device_state)))
    bar.close()
    return last


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a one-line error for a bad config file or --config.KEY."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, OSError) as e:  # OSError: the config file cannot be read
        message = str(e)
        # A config file's get_config that refuses its args: its message, not the traceback.
        refused = re.search(r"errors\.(?:Config|User)Error: (.*)$", message, re.S)
        if refused:
            message = refused.group(1)
    except (AttributeError, KeyError) as e:  # ml_collections: a --config.KEY the config lacks
        text = str(e).replace("\\n", " ").replace("\\'", "").strip("'\"")
        overrides = [a[2:].split("=")[0] for a in argv if a.startswith("--config.")]
        name = re.search(r"^'?([\w-]+)", text)
        key = next((o for o in overrides if name and name.group(1) in o.split(".")), "?")
        message = f"unknown config key {key[len('config.'):]}: {' '.join(text.split())}"
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(2)


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file at INFO
    try:
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        if FLAGS.config is None:
            raise UserError("--config is required")
        initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                               FLAGS.init_timeout)
        config = FLAGS.config
        try:
            config.keys()  # a config file that failed to load raises here
        except OSError as e:
            raise UserError(f"cannot load --config: {' '.join(str(e).split())}") from None
        if "study" in config:
            import study
            study.run(config, FLAGS.workdir, command=" ".join(["python", *sys.argv]))
        else:
            train(config, FLAGS.workdir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)
