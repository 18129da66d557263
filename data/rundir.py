"""The run directory: the one module that reads and writes it.

    DIR/config.json     the resolved config
    DIR/metrics.jsonl   one JSON object per logged step: `step`, `loss`, `examples_per_sec`, ...
    DIR/tensorboard/    the same metrics as TensorBoard events
    DIR/checkpoints/    Orbax checkpoints of the train state, one folder per step
    DIR/checkpoint_digests/STEP.json   the SHA-256 of every array of checkpoint STEP,
                        written before its save starts and checked on every restore
                        (Orbax checks no values: a garbled array file would load)

The training loop (tasks/loop.py) writes it; the evaluators (evaluators/features.py)
read its config and its latest checkpoint. Both stand above this module, which is
why the format lives here and not beside either of them.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from errors import UserError, describe

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINTS = "checkpoints"
DIGESTS = "checkpoint_digests"
DAMAGED = ".damaged"  # a damaged checkpoint STEP is kept beside the others as STEP.damaged


def prepare(workdir: str) -> str:
    """Creates DIR and checks it is writable, before any compute; returns its absolute path."""
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


def write_config(workdir: str, config: ml_collections.ConfigDict) -> None:
    """DIR/config.json: the resolved config, keys sorted (written whole, then renamed)."""
    path = os.path.join(workdir, CONFIG)
    with open(path + ".tmp", "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))
    os.replace(path + ".tmp", path)


# Keys a run may change when it is resumed: how long it runs, how often it logs and saves,
# and how it is evaluated. Any other difference from DIR/config.json is refused.
RESUMABLE = ("train.steps", "train.log_every", "train.ckpt_every", "train.keep_checkpoints",
             "train.grid_every", "train.views_png", "eval.")


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def changed_keys(workdir: str, config: ml_collections.ConfigDict) -> list[str]:
    """Keys whose value in `config` differs from DIR/config.json, other than RESUMABLE ones
    (keys the stored config predates are not differences)."""
    path = os.path.join(workdir, CONFIG)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        try:
            stored = _flat(json.load(f))
        except json.JSONDecodeError:
            return []  # a torn config.json is rewritten
    new = _flat(json.loads(config.to_json_best_effort()))
    return sorted(k for k, v in new.items() if k in stored and stored[k] != v
                  and not any(k == r or (r.endswith(".") and k.startswith(r)) for r in RESUMABLE))


class WorkdirLock:
    """One training process per run directory: an exclusive fcntl lock on DIR/.lock, which
    the kernel releases when the process ends, however it ends (no stale lock after a kill)."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, ".lock")
        self.file = None

    def __enter__(self):
        import fcntl

        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.file.close()
            raise UserError(f"{os.path.dirname(self.path)} is being trained by another process "
                            "(it holds .lock); wait for it or use another --workdir") from None
        return self

    def __exit__(self, *exc):
        self.file.close()  # closing releases the lock


def read_config(workdir: str) -> ml_collections.ConfigDict:
    """DIR/config.json; a UserError when DIR is not a run directory."""
    path = os.path.join(workdir, CONFIG)
    if not os.path.exists(path):
        raise UserError(f"{workdir} is not a run directory: {path} is missing")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def checkpoints(workdir: str, keep: int | None = None) -> ocp.CheckpointManager:
    """The Orbax manager of DIR/checkpoints; with `keep`, one that writes (creating the folder)
    and keeps that many checkpoints, else one that only reads."""
    directory = os.path.join(os.path.abspath(workdir), CHECKPOINTS)
    if keep is None:
        return ocp.CheckpointManager(directory)
    # cleanup_tmp_directories: a save that a kill interrupted leaves a temporary folder,
    # which Orbax never lists as a checkpoint; it is removed when the run resumes.
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           cleanup_tmp_directories=True)
    return ocp.CheckpointManager(directory, options=options)


class DamagedCheckpoint(UserError):
    """A checkpoint that cannot be read or whose arrays do not match their digest."""

    def __init__(self, directory: str, step: int, reason: str):
        self.step = step
        super().__init__(f"checkpoint step {step} in {directory} is damaged: {reason}")


def _array_digests(state) -> list[str]:
    """The SHA-256 of every array of `state`, sorted: independent of the pytree's container
    types (a TrainState saved, a dict restored by eval) and of its leaves' order."""
    leaves = jax.tree.leaves(jax.device_get(state))
    return sorted(hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest() for x in leaves)


def _digest_path(manager: ocp.CheckpointManager, step: int) -> str:
    return os.path.join(str(manager.directory.parent), DIGESTS, f"{step}.json")


def save(manager: ocp.CheckpointManager, step: int, state) -> None:
    """Checkpoint `step` of `state` (Orbax, asynchronous), after its digest is on disk, so
    that every checkpoint Orbax lists has one. Digests of deleted checkpoints are removed."""
    path = _digest_path(manager, step)
    if jax.process_index() == 0:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path + ".tmp", "w") as f:
            json.dump({"step": step, "sha256": _array_digests(state)}, f)
        os.replace(path + ".tmp", path)
    manager.save(step, args=ocp.args.StandardSave(state))
    if jax.process_index() == 0:
        kept = set(manager.all_steps())
        for name in os.listdir(os.path.dirname(path)):
            stem = name.removesuffix(".json")
            if stem.isdigit() and int(stem) < step and int(stem) not in kept:
                os.remove(os.path.join(os.path.dirname(path), name))


def _signature(tree) -> list[tuple]:
    """The (shape, dtype) of every array, sorted: what a config fixes about a checkpoint."""
    return sorted((tuple(x.shape), str(np.dtype(x.dtype))) for x in jax.tree.leaves(tree))


def _read(manager: ocp.CheckpointManager, step: int, target: Callable | object):
    """Checkpoint `step`, verified against its digest. `target`: the abstract state, or a
    function of the stored metadata that gives it. A checkpoint whose arrays have other
    shapes is another config's (UserError); one that cannot be read, or whose values do
    not match the digest saved with it, is damaged (DamagedCheckpoint)."""
    directory = str(manager.directory)
    path = os.path.join(directory, str(step), "default")
    try:
        metadata = ocp.StandardCheckpointer().metadata(path).item_metadata
    except Exception as e:  # noqa: BLE001 - whatever Orbax or tensorstore raise, it is unreadable
        raise DamagedCheckpoint(directory, step,
                                f"its metadata cannot be read ({describe(e)})") from None
    abstract = target(metadata) if callable(target) else target
    if _signature(metadata) != _signature(abstract):
        raise UserError(f"{manager.directory.parent}: its checkpoint (step {step}) does not fit "
                        "this config's model and optimizer (made by another config or an older "
                        "genviews); use a new --workdir")
    try:
        state = manager.restore(step, args=ocp.args.StandardRestore(abstract))
    except Exception as e:  # noqa: BLE001
        raise DamagedCheckpoint(directory, step,
                                f"an array cannot be read ({describe(e)})") from None
    digest = _digest_path(manager, step)
    if os.path.exists(digest):  # checkpoints of genviews before 2026-11-30 have none
        with open(digest) as f:
            expected = json.load(f)["sha256"]
        if _array_digests(state) != expected:
            raise DamagedCheckpoint(directory, step, "its arrays do not match the SHA-256 "
                                    "digests saved with them (a garbled file)")
    return state


def restore(manager: ocp.CheckpointManager, target, *, fallback: bool, keep_aside: bool = False):
    """(state, step) of the newest checkpoint, verified (see `_read`); (None, None) if there
    is none. A damaged one raises DamagedCheckpoint, or with `fallback` the next older one
    is tried, after one line that names it; with `keep_aside` (train.py) the damaged
    directory is renamed STEP.damaged, never deleted, so that training can redo the step."""
    damaged_any = False
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            return _read(manager, step, target), step
        except DamagedCheckpoint as e:
            if not fallback:
                raise
            damaged_any = True
            where = ""
            if keep_aside:
                damaged = os.path.join(str(manager.directory), str(step))
                aside = damaged + DAMAGED
                n = 1
                while os.path.exists(aside):
                    n += 1
                    aside = f"{damaged}{DAMAGED}{n}"
                os.rename(damaged, aside)
                manager.reload()
                where = f", kept as {os.path.basename(aside)}"
            print(f"{e}{where}; trying the one before it", flush=True)
    if damaged_any:
        raise UserError(f"no checkpoint in {manager.directory} can be read")
    return None, None


def _on_one_device(metadata):
    """The abstract state of stored `metadata` on this host's first device, whatever
    topology (devices, hosts) saved it: a run trained on 8 GPUs is evaluated on one CPU."""
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                        metadata)


def restore_latest_on_one_device(manager: ocp.CheckpointManager, *, fallback: bool = False):
    """(state, step) of the newest checkpoint on this host's first device, verified like
    `restore`: a damaged one raises, or with `fallback` the next older one is used."""
    return restore(manager, _on_one_device, fallback=fallback)


def restore_on_one_device(manager: ocp.CheckpointManager, step: int):
    """Checkpoint `step` on this host's first device, verified like `restore`."""
    return _read(manager, step, _on_one_device)


class _EventFile:
    """DIR/tensorboard/events.out.tfevents.*: scalars as TensorBoard events, written with the
    tensorboard package's record writer and protos. Not flax.metrics.tensorboard (or
    tf.summary): those import TensorFlow, 7 s of every train.py start on a 2-core CPU,
    where genviews needs TensorFlow only to prepare a TFDS dataset."""

    def __init__(self, logdir: str):
        # Imported here, when a run starts logging: 0.2 s that error paths need not pay.
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self._event, self._summary = event_pb2.Event, summary_pb2.Summary
        os.makedirs(logdir, exist_ok=True)
        name = f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}"
        self._records = RecordWriter(open(os.path.join(logdir, name), "ab"))
        # The first record names the format's version, as TensorFlow's writer does.
        self._append(self._event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, step: int, metrics: dict) -> None:
        values = [self._summary.Value(tag=k, simple_value=float(v)) for k, v in metrics.items()]
        self._append(self._event(wall_time=time.time(), step=step,
                                 summary=self._summary(value=values)))

    def _append(self, event) -> None:
        self._records.write(event.SerializeToString())
        self._records.flush()


class MetricsWriter:
    """metrics.jsonl (one JSON object per logged step) and TensorBoard, on process 0 only."""

    def __init__(self, workdir: str, resume_step: int, enabled: bool):
        self.enabled = enabled
        self.path = os.path.join(workdir, METRICS)
        self.tb = None
        if not enabled:
            return
        # Lines past the checkpoint we resume from belong to a run that is redone. A line
        # that does not parse was torn by a kill during its write: it is dropped, and said.
        if os.path.exists(self.path):
            kept, torn = [], 0
            with open(self.path) as f:
                for line in f:
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError:
                        torn += 1
                        continue
                    if record.get("step", 0) <= resume_step:
                        kept.append(line if line.endswith("\n") else line + "\n")
            if torn:
                print(f"{self.path}: dropped {torn} torn line(s) left by an interrupted write",
                      flush=True)
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(kept)
            os.replace(tmp, self.path)
        self.tb = _EventFile(os.path.join(workdir, "tensorboard"))

    def write(self, step: int, metrics: dict) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"step": step, **metrics}) + "\n")
        self.tb.write(step, metrics)
