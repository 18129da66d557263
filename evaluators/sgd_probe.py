"""GenRep's linear probe protocol (evaluator `linear_probe_genrep`): a linear layer trained
by SGD on a frozen encoder.

SGD with momentum 0.9 and no weight decay, for `epochs` epochs of minibatches, the
learning rate multiplied by `decay` at each epoch of `milestones` (GenRep: 100
epochs, ×0.2 at 60/75/90, batch 256, lr 0.1), on features of randomly cropped and
flipped training images (`embed` runs the augmentation and the frozen encoder
inside the jitted step) or on fixed features. Unlike GenRep, which reports the
best epoch's accuracy on the set it tests on, the last epoch's probe is tested
once: nothing is chosen on test.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from errors import check
from evaluators import features

Embed = Callable[[jax.Array, jax.Array], jax.Array]  # (key, batch of inputs) -> features


def fixed_features(key: jax.Array, batch: jax.Array) -> jax.Array:
    """The `embed` of inputs that are already features (no augmentation)."""
    del key
    return batch


def train(embed: Embed, inputs, labels: np.ndarray, num_classes: int, *,
          epochs: int = 100, lr: float = 0.1, milestones: Sequence[int] = (60, 75, 90),
          decay: float = 0.2, batch_size: int = 256, momentum: float = 0.9,
          seed: int = 0) -> dict:
    """Weights {"w": (d, C), "b": (C,)} of the probe trained on embed(key, inputs[batch]).

    `inputs`: an array (features, or images), or a source of data.datasets (images read
    batch by batch, for the augmented probe on a split too large for memory).

    Each epoch visits the rows in a new random order; the last, partial batch is
    padded and its padding masked out of the loss (static shapes under jit).
    """
    n = len(labels)
    steps_per_epoch = math.ceil(n / batch_size)
    schedule = optax.piecewise_constant_schedule(
        lr, {int(m) * steps_per_epoch: decay for m in milestones if 0 < m < epochs})
    tx = optax.sgd(schedule, momentum=momentum)
    key = jax.random.key(seed)
    take = (lambda rows: inputs[rows]) if isinstance(inputs, np.ndarray | jax.Array) else (
        lambda rows: inputs.read(rows)["image"])
    feature_dim = jax.eval_shape(embed, key, jnp.asarray(take(np.arange(1)))).shape[-1]
    params = {"w": jnp.zeros((feature_dim, num_classes)), "b": jnp.zeros((num_classes,))}
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state, batch, y, mask, key):
        features = jax.lax.stop_gradient(embed(key, batch))

        def loss_fn(p):
            ce = optax.softmax_cross_entropy_with_integer_labels(features @ p["w"] + p["b"], y)
            return jnp.sum(ce * mask) / jnp.maximum(jnp.sum(mask), 1.0)

        updates, opt_state = tx.update(jax.grad(loss_fn)(params), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, np.int32)
    for epoch in range(epochs):
        order = rng.permutation(n)
        order = np.concatenate([order, np.zeros(steps_per_epoch * batch_size - n, np.int64)])
        mask = (np.arange(len(order)) < n).astype(np.float32)
        for i in range(steps_per_epoch):
            rows = slice(i * batch_size, (i + 1) * batch_size)
            params, opt_state = step(params, opt_state, take(order[rows]), labels[order[rows]],
                                     mask[rows], jax.random.fold_in(key, epoch * steps_per_epoch + i))
    return params


def evaluate(embed: Embed, train_inputs: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
             test_y: np.ndarray, num_classes: int, *, augment: bool, **hparams) -> dict:
    """Trains the probe (see `train`), tests it once on the fixed test features `test_x`."""
    params = train(embed, train_inputs, train_y, num_classes, **hparams)
    pred = np.argmax(np.asarray(test_x) @ np.asarray(params["w"]) + np.asarray(params["b"]), -1)
    augmentation = "random resized crop + flip of training images" if augment else "none (fixed features)"
    return {"top1": 100 * float(np.mean(pred == np.asarray(test_y))),
            "protocol": "GenRep: SGD on a frozen encoder, step decay, last epoch tested once",
            "augmentation": augmentation,
            **{k: list(v) if isinstance(v, (tuple, list)) else v for k, v in hparams.items()}}


def validate(section) -> None:
    """Config section eval.linear_probe_genrep."""
    key = "eval.linear_probe_genrep"
    check(section.epochs > 0, f"{key}.epochs", "must be > 0")
    check(section.lr > 0, f"{key}.lr", "must be > 0")
    check(section.batch_size > 0, f"{key}.batch_size", "must be > 0")
    check(0 < section.crop_scale_min <= 1, f"{key}.crop_scale_min", "must be in (0, 1]")


def run(p) -> dict:
    """The evaluator `linear_probe_genrep` on a registry.Probe, with config section
    eval.linear_probe_genrep: on random crops of the training images through the frozen
    encoder (`augment`), or on their fixed features."""
    e = p.config.eval.linear_probe_genrep
    if e.augment:
        embed = features.augmented(p.encoder, p.variables, p.config.data.image_size,
                                   e.crop_scale_min)
        inputs = p.train  # images read batch by batch
    else:
        embed, inputs = fixed_features, p.train_x
    return evaluate(embed, inputs, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                    augment=e.augment, epochs=e.epochs, lr=e.lr, milestones=tuple(e.milestones),
                    decay=e.decay, batch_size=e.batch_size, seed=p.config.seed)
