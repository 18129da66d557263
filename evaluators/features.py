"""Frozen encoder features of labelled images, and the encoder restored from a run.

`load(DIR)` is the one path from a run directory to features: the run's config
(renamed keys moved, missing eval keys filled in), its encoder restored from the
latest checkpoint on one device, and `extract` in the run's image size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from configs import common
from data import datasets, pipeline, pixel, rundir
from errors import UserError
from models import encoders


def load_config(workdir: str) -> ml_collections.ConfigDict:
    """The config of the run in `workdir`, as this version reads it (configs.common.upgrade)."""
    return common.upgrade(rundir.read_config(workdir))


def restore_encoder(workdir: str, config, *, allow_unfinished: bool = False,
                    fallback: bool = False):
    """(encoder module, its variables, step) from the latest checkpoint of a contrastive run;
    a damaged latest checkpoint is an error naming it, or with `fallback` the newest
    readable one is used."""
    if config.task not in ("contrastive", "forward_forward", "classifier"):
        raise UserError(f"{workdir} trained task={config.task!r}; eval.py evaluates encoders "
                        "of contrastive, forward_forward and classifier runs")
    manager = rundir.checkpoints(workdir)
    directory = str(manager.directory)
    if manager.latest_step() is None:
        raise UserError(f"{workdir} has no checkpoint in {directory}: train it first")
    try:
        restored, step = rundir.restore_latest_on_one_device(manager, fallback=fallback)
    except rundir.DamagedCheckpoint as e:
        raise UserError(f"{e}; nothing evaluated (--fallback_checkpoint evaluates the newest "
                        "readable one)") from None
    if step < config.train.steps and not (allow_unfinished or fallback):
        raise UserError(f"{workdir} is unfinished (checkpoint at step {step} of "
                        f"{config.train.steps}): run its train.py command again to finish it")
    manager.close()
    variables = {"params": restored["params"]["encoder"],
                 "batch_stats": restored["batch_stats"]["encoder"]}
    ff = config.get("ff")  # older runs lack it; label pixels only for wrong-label negatives
    label_slots = ff.label_slots if config.task == "forward_forward" and ff.negative == "wrong_label" else 0
    encoder = encoders.build_encoder(config.model.encoder, image_size=config.data.image_size,
                                     width=config.model.width, label_slots=label_slots,
                                     dtype=config.train.dtype, pool=config.model.pool)
    return encoder, variables, step


def local_rows() -> jax.sharding.NamedSharding:
    """Arrays split by rows (their leading axis) over this process's devices: how the
    evaluators spread a batch of images or a matrix of features."""
    mesh = jax.sharding.Mesh(np.array(jax.local_devices()), ("data",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))


def _encode(encoder, variables, images01: jax.Array) -> jax.Array:
    return encoder.apply(variables, images01 * 2.0 - 1.0, train=False)


def extract(encoder, variables, images, image_size: int, batch_size: int = 1000,
            load_size: int = 0, workers: int = -1) -> np.ndarray:
    """Features (N, d) of uint8 images of any size, resized to `load_size` (0: image_size)
    and centre-cropped to image_size (`pixel.eval_view`).

    `images` is an array, or a source of data.datasets streamed in order by Grain
    (`pipeline.in_order`, `workers` processes): only the batches in flight are in host
    memory. Each fixed-size batch (rounded up to the local device count) is split over
    this process's devices. With several processes, process p extracts the p-th of P
    equal parts of the rows and every process receives all of them (an all-gather), so
    each can run the evaluators; every process must call this with the same images.
    """
    load_size = load_size or image_size
    devices = jax.local_device_count()
    batch_size = -(-batch_size // devices) * devices
    split = local_rows()
    if isinstance(images, np.ndarray):
        images = datasets.Dataset("images", "", images, np.zeros(len(images), np.int32), 0)
    n, processes = len(images), jax.process_count()
    if processes > 1:
        share = -(-n // processes)
        mine = np.arange(jax.process_index() * share, min(n, (jax.process_index() + 1) * share))
        images = datasets.Rows(images, mine)

    @jax.jit
    def apply(batch):
        x = batch.astype(jnp.float32) / 255.0
        return _encode(encoder, variables,
                       jax.vmap(lambda im: pixel.eval_view(im, image_size, load_size))(x))

    out = []
    for batch in pipeline.in_order(images, batch_size, workers=workers):
        count = len(batch["image"])
        pad = batch_size - count
        x = batch["image"]
        if pad:
            x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        out.append(np.asarray(apply(jax.device_put(x, split)))[:count])
    if out:
        local = np.concatenate(out)
    else:  # no rows here: an empty (0, d) block
        d = jax.eval_shape(apply, jax.ShapeDtypeStruct((batch_size, load_size, load_size, 3),
                                                       np.uint8)).shape[-1]
        local = np.zeros((0, d), np.float32)
    if processes == 1:
        return local
    from jax.experimental import multihost_utils

    d = local.shape[1]
    padded = np.zeros((share, d), np.float32)
    padded[:len(local)] = local
    every = np.asarray(multihost_utils.process_allgather(padded))  # (P, share, d)
    return every.reshape(-1, d)[:n]


def augmented(encoder, variables, image_size: int, crop_scale_min: float):
    """embed(key, uint8 images) -> features of random resized crops (scale [crop_scale_min, 1])
    with random flips: the training views of GenRep's linear probe, made on the device."""
    cfg = pixel.PixelConfig(crop_scale=(crop_scale_min, 1.0), flip=True, jitter_prob=0.0,
                            gray_prob=0.0, blur_prob=0.0)

    def embed(key, batch):
        x = batch.astype(jnp.float32) / 255.0
        keys = jax.random.split(key, x.shape[0])
        x = jax.vmap(lambda k, im: pixel.augment(k, im, image_size, cfg))(keys, x)
        return _encode(encoder, variables, x)

    return embed


@dataclasses.dataclass(frozen=True)
class RunEncoder:
    """The frozen encoder of a run directory, with what its features need from the run."""

    workdir: str
    config: Any  # the run's config (ml_collections.ConfigDict)
    encoder: Any
    variables: Any
    step: int

    def dataset(self, name: str, split: str, *, data_dir: str | None = None,
                max_examples: int = 0):
        """`split` of dataset `name` as a source (data.datasets.source) that reads real images
        as this run does (its load size), from the run's TFDS data_dir unless `data_dir` is given."""
        c = self.config.data
        return datasets.source(name, split, image_size=c.load_size or c.image_size,
                               data_dir=c.data_dir if data_dir is None else data_dir,
                               max_examples=max_examples)

    def extract(self, images) -> np.ndarray:
        """Features (N, d) of uint8 images (an array or a source), at the run's image size and
        eval batch size."""
        c = self.config.data
        return extract(self.encoder, self.variables, images, c.image_size,
                       self.config.eval.batch_size, load_size=c.load_size or c.image_size,
                       workers=c.get("workers", -1))


def load(workdir: str, *, allow_unfinished: bool = False, fallback: bool = False) -> RunEncoder:
    """The frozen encoder of the contrastive run in `workdir` (see the module docstring);
    `fallback`: the newest readable checkpoint when the latest is damaged."""
    config = load_config(workdir)
    encoder, variables, step = restore_encoder(workdir, config, allow_unfinished=allow_unfinished,
                                               fallback=fallback)
    return RunEncoder(workdir, config, encoder, variables, step)


def standardize(train, *others, eps: float = 1e-6) -> list:
    """Zero mean, unit variance per dimension, with the statistics of `train`: `train` and each
    of `others` so standardised (NumPy or JAX arrays alike)."""
    mean, std = train.mean(0), train.std(0) + eps
    return [(x - mean) / std for x in (train, *others)]
