"""Supervised training of an encoder and a linear classifier, end to end, on labels that may be
noisy: the learner of the Prune4ReL study (Park et al., NeurIPS 2023), with or without ELR.

`classifier.loss`:

- `ce`: the cross-entropy with the labels (a subset's labels are those it was selected
  under, noise included: data.subset);
- `elr`: early-learning regularisation (Liu et al., NeurIPS 2020; `losses.elr`): the
  cross-entropy plus λ·log(1 − ⟨t, p⟩), where each training example's target t is a
  temporal ensemble of the model's own predictions for it, t ← β·t + (1 − β)·p̂, updated
  whenever the example is drawn (`classifier.elr_lambda` λ, `classifier.elr_beta` β; the
  paper's CIFAR-10 values 3 and 0.7). The targets, one row per training example, are
  state that no gradient trains: they live beside BatchNorm's statistics
  (`batch_stats["elr_targets"]`) and are saved with them in every checkpoint. Each
  device updates the rows of its share of the batch and the updates are summed over
  devices; a row drawn twice in one global batch (at an epoch boundary) gets both.

Each image is seen through one pixel view (views.pixel, keyed by (seed, step, global
position) as in contrastive runs). The encoder is probed by eval.py like any other; the
classifier's own top-1 on the clean labels of `eval.test_split` is written by `finish`
to DIR/classifier.json.
"""

from __future__ import annotations

import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import losses
from data import datasets, pipeline, pixel, rundir, subset, views
from evaluators import features
from models import encoders
from tasks.contrastive import make_optimizer, pixel_config
from tasks.parallel import AXIS
from tasks.state import TrainState

LOSSES = ("ce", "elr")
RESULT = "classifier.json"  # finish(): the classifier's top-1 on the clean test labels


def _norm_stats(state: TrainState) -> dict:
    """BatchNorm's statistics of the state, without ELR's targets (kept beside them)."""
    return {k: v for k, v in state.batch_stats.items() if k != "elr_targets"}


class Classifier(nn.Module):
    encoder: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = True):
        return nn.Dense(self.num_classes, name="head")(self.encoder(x, train=train))


class ClassifierTask:
    def __init__(self, config):
        c = self.config = config
        self.frozen = {}
        self.dataset = datasets.training_source(c.data)
        if c.data.subset:
            self.dataset = subset.apply(self.dataset, c.data.subset)
        self.num_classes = self.dataset.num_classes
        encoder = encoders.build_encoder(c.model.encoder, image_size=c.data.image_size,
                                         width=c.model.width, axis_name=AXIS, dtype=c.train.dtype,
                                         pool=c.model.pool)
        self.model = Classifier(encoder, self.num_classes)
        self.tx = make_optimizer(c)
        self.pixel_cfg = pixel_config(c, c.views.pixel_strength_real)

    def init_state(self) -> TrainState:
        s, n = self.config.data.image_size, len(self.dataset)

        @jax.jit
        def init(key):
            variables = jax.vmap(lambda x: self.model.init(key, x, train=True), axis_name=AXIS)(
                jnp.zeros((1, 1, s, s, 3)))
            variables = jax.tree.map(lambda v: v[0], variables)
            stats = dict(variables["batch_stats"])
            if self.config.classifier.loss == "elr":  # zeros, as in Liu et al.'s code: a row's
                # first visit sets its target to (1 − β)·p̂
                stats["elr_targets"] = jnp.zeros((n, self.num_classes), jnp.float32)
            return TrainState(step=jnp.zeros((), jnp.int32), params=variables["params"],
                              batch_stats=stats, opt_state=self.tx.init(variables["params"]))

        return init(jax.random.key(self.config.seed))

    def views(self, step, index, image):
        """One pixel view (b, S, S, 3) in [-1, 1] of each image, keyed by (seed, step, index)."""
        c = self.config
        keys = views.example_keys(c.seed, step, index)
        x = jax.vmap(lambda k, im: pixel.view(jax.random.fold_in(k, 1), im, c.views.pixel,
                                              c.data.image_size, self.pixel_cfg))(
            keys, image.astype(jnp.float32) / 255.0)
        return x * 2.0 - 1.0

    def step(self, state: TrainState, batch: dict, frozen: dict):
        del frozen  # this task reads nothing frozen (self.frozen is {})
        c = self.config
        x = self.views(state.step, batch["index"], batch["image"])
        labels, rows = batch["label"], batch["row"]
        total = x.shape[0] * jax.lax.psum(1, AXIS)
        stats = _norm_stats(state)
        elr = c.classifier.loss == "elr"
        targets = state.batch_stats["elr_targets"] if elr else None

        def loss_fn(params):
            logits, updates = self.model.apply({"params": params, "batch_stats": stats}, x,
                                               train=True, mutable=["batch_stats"])
            logits = logits.astype(jnp.float32)
            if elr:
                new_rows = losses.elr_targets(targets[rows], jax.nn.softmax(logits),
                                              c.classifier.elr_beta)
                per_example = losses.elr(logits, labels, new_rows, c.classifier.elr_lambda)
            else:
                new_rows = None
                per_example = -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], -1)
            aux = {"loss": per_example.sum() / total,
                   "train_acc": (jnp.argmax(logits, -1) == labels).sum() / total}
            return aux["loss"], (updates["batch_stats"], new_rows, aux)

        grads, (new_stats, new_rows, aux) = jax.grad(loss_fn, has_aux=True)(state.params)
        grads = jax.lax.psum(grads, AXIS)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        new_stats = dict(new_stats)
        if elr:  # every device's rows (gathered: B rows, not the N × C table, cross devices);
            # a row drawn k times in the global batch (a subset smaller than the batch, an
            # epoch's end) moves by the mean of its k updates, which keeps its target a
            # probability vector whatever k and the device count
            all_rows = jax.lax.all_gather(rows, AXIS, tiled=True)
            delta = jax.lax.all_gather(new_rows - targets[rows], AXIS, tiled=True)
            k = (all_rows[:, None] == all_rows[None, :]).sum(1).astype(jnp.float32)
            new_stats["elr_targets"] = targets.at[all_rows].add(delta / k[:, None])
        return TrainState(step=state.step + 1, params=params, batch_stats=new_stats,
                          opt_state=opt_state), jax.lax.psum(aux, AXIS)

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        c = self.config
        yield from pipeline.batches(self.dataset, c.train.batch_size, seed=c.seed,
                                    start_step=start_step, process_index=process_index,
                                    process_count=process_count, workers=c.data.workers,
                                    with_rows=True)

    def probabilities(self, state: TrainState, images: np.ndarray, batch: int = 500) -> np.ndarray:
        """The classifier's class probabilities (n, C) of uint8 images (centre crop, no
        augmentation, BatchNorm's running statistics)."""
        c = self.config
        stats = _norm_stats(state)
        variables = {"params": state.params, "batch_stats": stats}

        @jax.jit
        def classify(x):
            x = jax.vmap(lambda im: pixel.centre_crop(im, c.data.image_size))(
                x.astype(jnp.float32) / 255.0) * 2.0 - 1.0
            return jax.nn.softmax(self.model.apply(variables, x, train=False).astype(jnp.float32), -1)

        return np.concatenate([np.asarray(classify(images[i:i + batch]))
                               for i in range(0, len(images), batch)])

    def predict(self, state: TrainState, images: np.ndarray) -> np.ndarray:
        """The classifier's classes of uint8 images (`probabilities`' argmax)."""
        return np.argmax(self.probabilities(state, images), -1)

    @classmethod
    def restore(cls, workdir: str) -> tuple[ClassifierTask, TrainState]:
        """The task and the latest state of the finished classifier run in `workdir`."""
        config = features.load_config(workdir)
        manager = rundir.checkpoints(workdir)
        restored, step = rundir.restore_latest_on_one_device(manager)
        manager.close()
        state = TrainState(step=step, params=restored["params"],
                           batch_stats=restored["batch_stats"], opt_state=None)
        return cls(config), state

    def finish(self, state: TrainState, workdir: str) -> None:
        """DIR/classifier.json: top-1 (%) on the clean labels of data.name's eval.test_split."""
        if jax.process_index() != 0:
            return
        c = self.config
        test = datasets.load(c.data.name, c.eval.test_split, image_size=c.data.load_size or c.data.image_size,
                             data_dir=c.data.data_dir, max_examples=c.eval.max_test)
        state = jax.device_get(state)
        top1 = 100.0 * float(np.mean(self.predict(state, test.images) == test.labels))
        result = {"test_split": c.eval.test_split, "examples": len(test.labels), "test_top1": top1,
                  "loss": c.classifier.loss, "train_examples": len(self.dataset)}
        path = os.path.join(workdir, RESULT)
        with open(path + ".tmp", "w") as f:
            json.dump(result, f, indent=2)
        os.replace(path + ".tmp", path)
        print(f"classifier: {top1:.2f}% top-1 on {c.data.name} {c.eval.test_split}", flush=True)
