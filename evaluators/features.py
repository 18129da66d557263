"""Frozen encoder features of labelled images, and the encoder restored from a run."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from data import pixel
from errors import UserError
from models import encoders


def load_config(workdir: str) -> ml_collections.ConfigDict:
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        raise UserError(f"{workdir} is not a run directory: {path} is missing")
    with open(path) as f:
        return ml_collections.ConfigDict(json.load(f))


def restore_on_one_device(manager: ocp.CheckpointManager, step: int):
    """The pytree of checkpoint `step` on this host's first device, whatever topology
    (devices, hosts) saved it: a run trained on 8 GPUs is evaluated on one CPU."""
    path = os.path.join(str(manager.directory), str(step), "default")
    metadata = ocp.StandardCheckpointer().metadata(path).item_metadata
    sharding = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    target = jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=sharding),
                          metadata)
    return manager.restore(step, args=ocp.args.StandardRestore(target))


def restore_encoder(workdir: str, config, *, allow_unfinished: bool = False):
    """(encoder module, its variables, step) from the latest checkpoint of a contrastive run."""
    if config.task != "contrastive":
        raise UserError(f"{workdir} trained task={config.task!r}; eval.py evaluates encoders "
                        "of contrastive runs")
    directory = os.path.join(os.path.abspath(workdir), "checkpoints")
    manager = ocp.CheckpointManager(directory)
    step = manager.latest_step()
    if step is None:
        raise UserError(f"{workdir} has no checkpoint in {directory}: train it first")
    if step < config.train.steps and not allow_unfinished:
        raise UserError(f"{workdir} is unfinished (checkpoint at step {step} of "
                        f"{config.train.steps}): run its train.py command again to finish it")
    restored = restore_on_one_device(manager, step)
    manager.close()
    variables = {"params": restored["params"]["encoder"],
                 "batch_stats": restored["batch_stats"]["encoder"]}
    encoder = encoders.build_encoder(config.model.encoder, image_size=config.data.image_size,
                                     width=config.model.width)
    return encoder, variables, step


def _centre(image: jax.Array, image_size: int) -> jax.Array:
    """The central image_size square of a larger image (Resize + CenterCrop, as torchvision
    evaluates); an image no larger than image_size is resized to it."""
    h, w = image.shape[:2]
    if h >= image_size and w >= image_size:
        top, left = (h - image_size) // 2, (w - image_size) // 2
        return image[top:top + image_size, left:left + image_size]
    return pixel.centre_crop(image, image_size)


def _encode(encoder, variables, images01: jax.Array) -> jax.Array:
    return encoder.apply(variables, images01 * 2.0 - 1.0, train=False)


def extract(encoder, variables, images: np.ndarray, image_size: int, batch_size: int = 1000) -> np.ndarray:
    """Features (N, d) of uint8 images, centre-cropped to image_size, in fixed-size batches."""

    @jax.jit
    def apply(batch):
        x = batch.astype(jnp.float32) / 255.0
        return _encode(encoder, variables, jax.vmap(lambda im: _centre(im, image_size))(x))

    out = []
    n = len(images)
    for start in range(0, n, batch_size):
        batch = images[start:start + batch_size]
        pad = batch_size - len(batch)
        if pad:
            batch = np.concatenate([batch, np.zeros((pad,) + batch.shape[1:], batch.dtype)])
        out.append(np.asarray(apply(batch))[:batch_size - pad])
    return np.concatenate(out)


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
