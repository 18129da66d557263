"""Pretraining a class-conditional GAN (models/generators/resnet.py or dcgan.py) on real images.

One step updates the discriminator once, then the generator once, with the hinge
loss; the generator's BatchNorm is cross-replica. Options (config section `gan`):

- DiffAugment (Zhao et al. 2020): the same differentiable colour, translation and
  cutout transforms are applied to real and fake images before the discriminator
  sees them, so it cannot overfit the training set;
- a classifier (AC-GAN's auxiliary classifier, as a network of its own): it learns
  to classify clean real images, and the generator is asked to make samples it
  classifies as the class they were drawn for; this is what makes samples draw
  their class;
- an exponential moving average of the generator's weights, which is what is
  exported; its BatchNorm statistics are re-estimated at the end.

Latents and fake classes are keyed by (seed, step, global example index), like
every draw in genviews. At the end the generator is exported with
`models.generators.save`, so the workdir is a generator checkpoint
(`generator.json`, `generator/`).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import losses
from data import datasets, pipeline, views
from data.grids import save_grid
from errors import ConfigError
from evaluators import generator_quality
from models import generators as gen_lib
from models.generators import dcgan, resnet
from tasks.parallel import AXIS
from tasks.state import TrainState

GRID_PER_CLASS = 8


def diff_augment(key: jax.Array, image: jax.Array) -> jax.Array:
    """DiffAugment's colour, translation (±1/8) and cutout (1/2) policy on one image in
    [-1, 1]; differentiable in the image, so the generator learns through it."""
    kb, ks, kc, kt, kx = jax.random.split(key, 5)
    x = image + (jax.random.uniform(kb) - 0.5)
    mean = x.mean(-1, keepdims=True)
    x = (x - mean) * (2 * jax.random.uniform(ks)) + mean
    mean = x.mean()
    x = (x - mean) * (jax.random.uniform(kc) + 0.5) + mean
    size = image.shape[0]
    shift = int(size * 0.125 + 0.5)
    dy, dx = jax.random.randint(kt, (2,), -shift, shift + 1)
    padded = jnp.pad(x, ((shift, shift), (shift, shift), (0, 0)))
    x = jax.lax.dynamic_slice(padded, (shift + dy, shift + dx, 0), x.shape)
    cut = size // 2
    cy, cx = jax.random.randint(kx, (2,), 0, size + (1 - cut % 2))
    rows = jnp.arange(size)[:, None]
    cols = jnp.arange(size)[None, :]
    inside = (jnp.abs(rows - cy) < cut // 2 + 0.5) & (jnp.abs(cols - cx) < cut // 2 + 0.5)
    return x * (1 - inside[..., None].astype(x.dtype))


class GeneratorTask:
    def __init__(self, config):
        c = self.config = config
        self.frozen = {}
        if c.generator.family not in ("dcgan", "resnet"):
            raise ConfigError(f"config key generator.family: only 'dcgan' and 'resnet' can be "
                              f"pretrained here, got {c.generator.family!r} (convert others with "
                              "models.convert)")
        self.dataset = datasets.training_source(c.data, c.generator.resolution)
        num_classes = self.dataset.num_classes if c.generator.num_classes else 0
        self.hparams = {"z_dim": c.generator.z_dim, "num_classes": num_classes,
                        "resolution": c.generator.resolution, "width": c.generator.width}
        if c.generator.family == "resnet":
            self.g = resnet.ResNetGenerator(**self.hparams, axis_name=AXIS)
            self.d = resnet.ResNetDiscriminator(num_classes, c.gan.d_width)
        else:
            self.g = dcgan.DCGANGenerator(**self.hparams, axis_name=AXIS)
            self.d = dcgan.ProjectionDiscriminator(num_classes, c.gan.d_width)
        if c.gan.classifier_weight and not num_classes:
            raise ConfigError("config key gan.classifier_weight: the classifier needs a "
                              "class-conditional generator (generator.num_classes > 0)")
        self.classifier = resnet.Classifier(max(num_classes, 1), c.gan.d_width, axis_name=AXIS)
        self.tx_c = optax.adam(c.gan.lr_classifier)
        self.tx_g = optax.adam(c.gan.lr_g, b1=c.gan.b1, b2=c.gan.b2)
        self.tx_d = optax.adam(c.gan.lr_d, b1=c.gan.b1, b2=c.gan.b2)

    def init_state(self) -> TrainState:
        c = self.config

        @jax.jit
        def init(key):
            kg, kd, kc = jax.random.split(key, 3)
            z = jnp.zeros((1, 2, c.generator.z_dim))
            y = jnp.zeros((2,), jnp.int32)
            g_vars = jax.vmap(lambda z: self.g.init(kg, z, y, train=True), axis_name=AXIS)(z)
            g_vars = jax.tree.map(lambda v: v[0], g_vars)
            x = jnp.zeros((2, c.generator.resolution, c.generator.resolution, 3))
            d_vars = self.d.init(kd, x, y, train=True)
            params = {"g": g_vars["params"], "d": d_vars["params"]}
            stats = {"g": g_vars["batch_stats"], "d": d_vars["batch_stats"]}
            opt = {"g": self.tx_g.init(params["g"]), "d": self.tx_d.init(params["d"])}
            if c.gan.ema_decay:
                params["g_ema"] = g_vars["params"]
            if c.gan.classifier_weight:
                c_vars = self.classifier.init(kc, x, train=False)
                params["c"], stats["c"] = c_vars["params"], c_vars["batch_stats"]
                opt["c"] = self.tx_c.init(params["c"])
            return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                              opt_state=opt)

        return init(jax.random.key(c.seed))

    def step(self, state: TrainState, batch: dict, frozen: dict):
        del frozen  # this task reads nothing frozen (self.frozen is {})
        c = self.config
        real = batch["image"].astype(jnp.float32) / 127.5 - 1.0
        y_real = batch["label"] if self.hparams["num_classes"] else jnp.zeros_like(batch["label"])
        keys = views.example_keys(c.seed, state.step, batch["index"])
        z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (c.generator.z_dim,)))(keys)
        y_fake = jax.vmap(lambda k: jax.random.randint(
            jax.random.fold_in(k, 1), (), 0, max(self.hparams["num_classes"], 1)))(keys)
        params, stats = state.params, state.batch_stats

        def generate(g_params):
            fake, upd = self.g.apply({"params": g_params, "batch_stats": stats["g"]}, z, y_fake,
                                     train=True, mutable=["batch_stats"])
            return fake, upd["batch_stats"]

        fake, g_stats = generate(params["g"])
        n = real.shape[0]

        def augment(images, *streams):
            """DiffAugment with keys (example, stream): one stream per group of n images."""
            if not c.gan.diffaugment:
                return images
            aug_keys = jnp.concatenate([jax.vmap(lambda k, s=s: jax.random.fold_in(k, s))(keys)
                                        for s in streams])
            return jax.vmap(diff_augment)(aug_keys, images)

        def discriminate(d_params, d_stats, images, labels, train):
            variables = {"params": d_params, "batch_stats": d_stats}
            if train:
                out, upd = self.d.apply(variables, images, labels, train=True,
                                        mutable=["batch_stats"])
                return out, upd["batch_stats"]
            return self.d.apply(variables, images, labels, train=False), d_stats

        def d_loss_fn(d_params):
            both = augment(jnp.concatenate([real, jax.lax.stop_gradient(fake)]), 2, 3)
            labels = jnp.concatenate([y_real, y_fake])
            logits, new_stats = discriminate(d_params, stats["d"], both, labels, True)
            return losses.hinge_discriminator(logits[:n], logits[n:]), new_stats

        (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(params["d"])
        d_grads = jax.lax.pmean(d_grads, AXIS)
        d_updates, d_opt = self.tx_d.update(d_grads, state.opt_state["d"], params["d"])
        d_params = optax.apply_updates(params["d"], d_updates)
        opt_state = {"d": d_opt}
        c_params = c_stats = None
        metrics = {"d_loss": d_loss}
        if c.gan.classifier_weight:
            def c_loss_fn(p):
                logits, upd = self.classifier.apply({"params": p, "batch_stats": stats["c"]}, real,
                                                    train=True, mutable=["batch_stats"])
                ce = optax.softmax_cross_entropy_with_integer_labels(logits, y_real).mean()
                return ce, (upd["batch_stats"], jnp.mean(logits.argmax(-1) == y_real))

            (c_loss, (c_stats, c_acc)), c_grads = jax.value_and_grad(c_loss_fn, has_aux=True)(
                params["c"])
            c_grads = jax.lax.pmean(c_grads, AXIS)
            c_updates, opt_state["c"] = self.tx_c.update(c_grads, state.opt_state["c"], params["c"])
            c_params = optax.apply_updates(params["c"], c_updates)
            metrics.update(classifier_loss=c_loss, classifier_acc=c_acc)

        def g_loss_fn(g_params):
            fake, new_stats = generate(g_params)
            logits, _ = discriminate(d_params, d_stats, augment(fake, 4), y_fake, False)
            loss = losses.hinge_generator(logits)
            if c.gan.classifier_weight:
                class_logits = self.classifier.apply(
                    {"params": c_params, "batch_stats": c_stats}, fake, train=False)
                loss = loss + c.gan.classifier_weight * \
                    optax.softmax_cross_entropy_with_integer_labels(class_logits, y_fake).mean()
            return loss, new_stats

        (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(params["g"])
        g_grads = jax.lax.pmean(g_grads, AXIS)
        g_updates, g_opt = self.tx_g.update(g_grads, state.opt_state["g"], params["g"])
        g_params = optax.apply_updates(params["g"], g_updates)
        new_params = {"g": g_params, "d": d_params}
        new_stats = {"g": g_stats, "d": d_stats}
        opt_state["g"] = g_opt
        if c.gan.classifier_weight:
            new_params["c"], new_stats["c"] = c_params, c_stats
        if c.gan.ema_decay:
            # Plain averaging for the first steps, so the average does not start from init.
            decay = jnp.minimum(c.gan.ema_decay, (state.step + 1.0) / (state.step + 10.0))
            new_params["g_ema"] = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p,
                                               params["g_ema"], g_params)
        metrics = jax.lax.pmean({**metrics, "g_loss": g_loss}, AXIS)
        metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]
        return TrainState(step=state.step + 1, params=new_params, batch_stats=new_stats,
                          opt_state=opt_state), metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        return pipeline.batches(self.dataset, self.config.train.batch_size, seed=self.config.seed,
                                start_step=start_step, process_index=process_index,
                                process_count=process_count, workers=self.config.data.workers)

    def generator(self, state: TrainState, stats_batches: int = 0) -> gen_lib.Generator:
        """The generator to export: the weight average when there is one, with BatchNorm
        statistics re-estimated for those weights from `stats_batches` batches of 256
        samples (0: `gan.stats_batches`)."""
        c = self.config
        g = gen_lib.build(c.generator.family, self.hparams)
        params = state.params["g_ema"] if c.gan.ema_decay else state.params["g"]
        stats = state.batch_stats["g"]
        if c.gan.ema_decay:
            stats = self._standing_stats(params, stats, stats_batches or c.gan.stats_batches)
        return dataclasses.replace(g, params=jax.device_get({"params": params,
                                                             "batch_stats": stats}))

    def _standing_stats(self, params, stats, batches: int = 40, size: int = 256):
        """BatchNorm running statistics of `params`, from `batches` batches of fresh samples."""
        key = jax.random.key(self.config.seed + 7919)
        for i in range(batches):
            stats = self._stats_update(params, stats, jax.random.fold_in(key, i), size)
        return stats

    @functools.partial(jax.jit, static_argnums=(0, 4))
    def _stats_update(self, params, stats, key, size):
        """One batch of `size` samples' update of G's BatchNorm statistics. Compiled once per
        task, with the parameters an argument: a closure over them made XLA constants of
        them, and a new program at every call (the sample grids, the export)."""
        kz, ky = jax.random.split(key)
        z = jax.random.normal(kz, (size, self.hparams["z_dim"]))
        y = jax.random.randint(ky, (size,), 0, max(self.hparams["num_classes"], 1))
        module = type(self.g)(**self.hparams)  # no axis_name: statistics of this batch
        _, upd = module.apply({"params": params, "batch_stats": stats}, z, y, train=True,
                              mutable=["batch_stats"])
        return upd["batch_stats"]

    def sample_grid(self, state: TrainState) -> np.ndarray:
        return class_grid(self.generator(state, stats_batches=min(8, self.config.gan.stats_batches)))

    def finish(self, state: TrainState, workdir: str) -> None:
        export(workdir, self.generator(state), int(state.step))


def class_grid(g: gen_lib.Generator) -> np.ndarray:
    """(classes, GRID_PER_CLASS, H, W, 3) samples in [0, 1] of a generator with params,
    from fixed latents: a row per class (the grid of evaluators.generator_quality)."""
    return generator_quality.grid(g, per_class=GRID_PER_CLASS)


def export(workdir: str, g: gen_lib.Generator, step: int) -> None:
    """Makes `workdir` a generator directory (models.generators.save) with samples.png."""
    if jax.process_index() == 0:
        save_grid(f"{workdir}/samples.png", class_grid(g),
                  title=f"samples at step {step} (a row per class)")
    gen_lib.save(workdir, g, g.params)
