"""Forward-Forward (Hinton 2022): an encoder trained layer by layer, with negatives from a generator.

Each layer of `models.encoders.FFConvNet` has its own objective: its *goodness*, the
mean square of its ReLU activities, G = mean(h²), should be above a threshold θ
(`ff.threshold`) on positive data and below it on negative data. The probability that an
input is positive is σ(G − θ), and the layer's loss is the logistic loss of that
probability on a batch of positives and as many negatives:

    L = mean_pos softplus(θ − G) + mean_neg softplus(G − θ).

A layer's input is the RMS-normalised output of the layer below with its gradient
stopped, so the sum of the layers' losses trains each layer on its own loss only: there
is no backward pass through the network.

Positives (`ff.positive`): `real` images of data.name, or `generated` samples of the
generator (each of its class). Negatives (`ff.negative`):

- `generated`: the generator's samples (real positives against generated negatives);
- `wrong_label`: a generator's sample of class c with a label c' ≠ c embedded in its
  first pixels, where positives carry their own label (supervised FF);
- `hybrid`: hybrids of two positives, m·a + (1 − m)·b, under a smooth random mask m
  (a random bit image blurred six times and thresholded at ½, as in the paper). The
  partner of batch row 2i is row 2i + 1 and the reverse, so pairs never straddle devices.

Every random draw is keyed by (seed, step, global example index), as in the contrastive
task, so 1 and 4 devices compute the same update. eval.py probes the encoder's features
(models.encoders.FFConvNet) with the same evaluators as a contrastive run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import datasets, pipeline, pixel, views
from data.grids import save_grid
from errors import ConfigError
from models import encoders
from tasks.contrastive import load_generator, make_optimizer
from tasks.parallel import AXIS
from tasks.state import TrainState

POSITIVES = ("real", "generated")
NEGATIVES = ("generated", "wrong_label", "hybrid")
_BLURS = 6  # how many times the hybrid mask's random bits are blurred (Hinton 2022)


def uses_generator(ff) -> bool:
    """Whether a run with the config section `ff` samples the generator: generated positives,
    or generated or wrong-label negatives (real images against their hybrids need none)."""
    return ff.positive == "generated" or ff.negative in ("generated", "wrong_label")


def hybrid_mask(key: jax.Array, size: int) -> jax.Array:
    """(size, size, 1) in {0, 1}: random bits blurred _BLURS times with the filter [¼, ½, ¼]
    along both axes, then thresholded at ½: large regions of ones and of zeros."""
    m = jax.random.bernoulli(key, 0.5, (size, size)).astype(jnp.float32)
    for _ in range(_BLURS):
        for axis in (0, 1):
            padded = jnp.pad(m, [(1, 1) if a == axis else (0, 0) for a in range(2)], mode="edge")
            lo, mid, hi = (jax.lax.slice_in_dim(padded, i, i + size, axis=axis) for i in range(3))
            m = 0.25 * lo + 0.5 * mid + 0.25 * hi
    return (m > 0.5).astype(jnp.float32)[..., None]


def goodness(activities: list[jax.Array]) -> jax.Array:
    """(layers, B): each layer's goodness, the mean square of its activities per example."""
    return jnp.stack([jnp.mean(jnp.square(a.astype(jnp.float32)), axis=tuple(range(1, a.ndim)))
                      for a in activities])


def layer_losses(g_pos: jax.Array, g_neg: jax.Array, threshold: float, total: jax.Array):
    """(layers,): each layer's logistic loss, its share of the global batch's mean: g_pos and
    g_neg (layers, b) are this device's goodness, `total` the global number of positives."""
    return (jnp.sum(jax.nn.softplus(threshold - g_pos), -1)
            + jnp.sum(jax.nn.softplus(g_neg - threshold), -1)) / total


class ForwardForwardTask:
    def __init__(self, config):
        c = self.config = config
        if c.model.encoder != "ff_convnet":
            raise ConfigError(f"config key model.encoder: task=forward_forward trains ff_convnet "
                              f"(layer-local, no BatchNorm), got {c.model.encoder!r}")
        self.generator = None
        self.frozen = {}  # an argument of the step (tasks.parallel.Runner), never trained
        if uses_generator(c.ff):
            self.generator = load_generator(c)
            self.frozen = {"generator": self.generator.params}
            if c.ff.negative == "wrong_label" and self.generator.num_classes < 2:
                raise ConfigError("config key ff.negative: wrong_label needs a class-conditional "
                                  "generator of at least 2 classes")
        self.dataset = None
        if c.ff.positive == "real":
            self.dataset = datasets.training_source(c.data)
        self.num_classes = (self.generator.num_classes if self.generator is not None
                            else self.dataset.num_classes)
        if (c.ff.negative == "wrong_label" and self.dataset is not None
                and self.dataset.num_classes != self.num_classes):
            raise ConfigError(f"config key ff.negative: wrong_label embeds the generator's "
                              f"{self.num_classes} classes, {c.data.name} has "
                              f"{self.dataset.num_classes}; they must be the same classes")
        if c.ff.negative == "wrong_label" and c.ff.label_slots != self.num_classes:
            raise ConfigError(f"config key ff.label_slots: must be the number of classes, "
                              f"{self.num_classes}, got {c.ff.label_slots}")
        self.encoder = encoders.build_encoder(
            c.model.encoder, image_size=c.data.image_size, width=c.model.width,
            dtype=c.train.dtype, label_slots=c.ff.label_slots if c.ff.negative == "wrong_label" else 0)
        self.tx = make_optimizer(c)

    def init_state(self) -> TrainState:
        s = self.config.data.image_size

        @jax.jit
        def init(key):
            params = {"encoder": self.encoder.init(key, jnp.zeros((1, s, s, 3)))["params"]}
            return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                              batch_stats={"encoder": {}}, opt_state=self.tx.init(params))

        return init(jax.random.key(self.config.seed))

    def _sample(self, keys, frozen, classes=None):
        """Generator samples (b, S, S, 3) in [0, 1] and their classes, one per key (classes
        drawn from the keys unless given)."""
        c, g = self.config, self.generator
        z, y = views.anchors(keys, z_dim=g.z_dim, num_classes=g.num_classes,
                             truncation=c.generator.truncation)
        y = y if classes is None else classes
        images = views.to_unit(g.apply(frozen["generator"], z, y, c.generator.truncation))
        images = jax.vmap(lambda im: pixel.centre_crop(im, c.data.image_size))(images)
        return images, y

    def pairs(self, step, index, image=None, label=None, frozen=None):
        """(positives, negatives), each (b, S, S, 3) in [-1, 1], with labels embedded for
        ff.negative=wrong_label; from the keys of (seed, step, index)."""
        c = self.config
        frozen = frozen or self.frozen
        keys = views.example_keys(c.seed, step, index)
        pos_keys, neg_keys, mask_keys = (jax.vmap(lambda k, i=i: jax.random.fold_in(k, i))(keys)
                                         for i in (1, 2, 3))
        if c.ff.positive == "real":
            size, load = c.data.image_size, c.data.load_size or c.data.image_size
            pos = jax.vmap(lambda im: pixel.eval_view(im, size, load))(  # what eval.py probes
                jnp.asarray(image).astype(jnp.float32) / 255.0)
        else:
            pos, label = self._sample(pos_keys, frozen)
        if c.ff.negative == "generated":
            neg, _ = self._sample(neg_keys, frozen)
        elif c.ff.negative == "wrong_label":
            neg_class = jax.vmap(lambda k: jax.random.randint(k, (), 0, self.num_classes))(neg_keys)
            neg, _ = self._sample(neg_keys, frozen, neg_class)
            shift = jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 1), (), 1,
                                                          self.num_classes))(neg_keys)
            wrong = (neg_class + shift) % self.num_classes  # any class but the sample's
        else:  # hybrid: row 2i with row 2i + 1 (pairs on one device: the batch share is even)
            partner = pos.reshape((-1, 2) + pos.shape[1:])[:, ::-1].reshape(pos.shape)
            mask = jax.vmap(lambda k: hybrid_mask(k, pos.shape[1]))(mask_keys)
            neg = mask * pos + (1.0 - mask) * partner
        pos, neg = pos * 2.0 - 1.0, neg * 2.0 - 1.0
        if c.ff.negative == "wrong_label":
            one_hot = lambda y: 2.0 * jax.nn.one_hot(y, self.num_classes) - 1.0  # noqa: E731
            pos = encoders.embed_label(pos, one_hot(label))
            neg = encoders.embed_label(neg, one_hot(wrong))
        return pos, neg

    def step(self, state: TrainState, batch: dict, frozen: dict):
        c = self.config
        pos, neg = self.pairs(state.step, batch["index"], batch.get("image"), batch.get("label"),
                              frozen)
        b = pos.shape[0]
        total = b * jax.lax.psum(1, AXIS)

        def loss_fn(params):
            acts = self.encoder.apply({"params": params["encoder"]}, jnp.concatenate([pos, neg]),
                                      per_layer=True)
            g = goodness(acts)
            losses = layer_losses(g[:, :b], g[:, b:], c.ff.threshold, total)
            aux = {f"layer{i}_loss": losses[i] for i in range(len(acts))}
            for i in range(len(acts)):  # the share of inputs each layer classifies correctly
                right = jnp.sum(g[i, :b] > c.ff.threshold) + jnp.sum(g[i, b:] <= c.ff.threshold)
                aux[f"layer{i}_acc"] = right / (2 * total)
                aux[f"layer{i}_goodness_gap"] = (jnp.sum(g[i, :b]) - jnp.sum(g[i, b:])) / total
            return jnp.sum(losses), aux

        grads, aux = jax.grad(loss_fn, has_aux=True)(state.params)
        grads = jax.lax.psum(grads, AXIS)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = jax.lax.psum(aux, AXIS)
        metrics["loss"] = sum(v for k, v in metrics.items() if k.endswith("_loss"))
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        c = self.config
        if self.dataset is not None:
            yield from pipeline.batches(self.dataset, c.train.batch_size, seed=c.seed,
                                        start_step=start_step, process_index=process_index,
                                        process_count=process_count, workers=c.data.workers)
            return
        yield from views.index_batches(c.train.batch_size, process_index, process_count)

    def finish(self, state: TrainState, workdir: str) -> None:
        """views.png: positives beside their negatives (the first 8 of step 0)."""
        if jax.process_index() != 0 or not self.config.train.views_png:
            return
        index = np.arange(8, dtype=np.int32)
        image = label = None
        if self.dataset is not None:
            rows = self.dataset.read(index)
            image, label = rows["image"], np.asarray(rows["label"], np.int32)
        pos, neg = jax.jit(self.pairs)(0, index, image, label)
        grid = (np.stack([np.asarray(pos), np.asarray(neg)], 1) + 1.0) / 2.0
        save_grid(f"{workdir}/views.png", grid,
                  title=f"positive ({self.config.ff.positive}) | negative ({self.config.ff.negative})")
