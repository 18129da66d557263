"""Pretraining the class-conditional GAN (models/generators/dcgan.py) on real images.

One step updates the discriminator once, then the generator once, with the hinge
loss; the generator's BatchNorm is cross-replica. Latents and fake classes are
keyed by (seed, step, global example index), like every draw in genviews. At the
end the generator is exported with `models.generators.save`, so the workdir is a
generator checkpoint (`generator.json`, `generator/`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

import losses
from data import datasets
from data.grids import save_grid
from models import generators as gen_lib
from models.generators.dcgan import DCGANGenerator, ProjectionDiscriminator
from tasks.parallel import AXIS
from tasks.state import TrainState

GRID_CLASSES = 10
GRID_PER_CLASS = 8


class GeneratorTask:
    def __init__(self, config):
        c = self.config = config
        if c.generator.family != "dcgan":
            raise ValueError(f"config key generator.family: only 'dcgan' can be pretrained here, "
                             f"got {c.generator.family!r} (convert others with models.convert)")
        self.dataset = datasets.load(c.data.name, c.data.split, image_size=c.generator.resolution,
                                     data_dir=c.data.data_dir, max_examples=c.data.max_examples)
        num_classes = self.dataset.num_classes if c.generator.num_classes else 0
        self.hparams = {"z_dim": c.generator.z_dim, "num_classes": num_classes,
                        "resolution": c.generator.resolution, "width": c.generator.width}
        self.g = DCGANGenerator(**self.hparams, axis_name=AXIS)
        self.d = ProjectionDiscriminator(num_classes, c.gan.d_width)
        self.tx_g = optax.adam(c.gan.lr_g, b1=c.gan.b1, b2=c.gan.b2)
        self.tx_d = optax.adam(c.gan.lr_d, b1=c.gan.b1, b2=c.gan.b2)

    def init_state(self) -> TrainState:
        c = self.config

        @jax.jit
        def init(key):
            kg, kd = jax.random.split(key)
            z = jnp.zeros((1, 2, c.generator.z_dim))
            y = jnp.zeros((2,), jnp.int32)
            g_vars = jax.vmap(lambda z: self.g.init(kg, z, y, train=True), axis_name=AXIS)(z)
            g_vars = jax.tree.map(lambda v: v[0], g_vars)
            x = jnp.zeros((2, c.generator.resolution, c.generator.resolution, 3))
            d_vars = self.d.init(kd, x, y, train=True)
            params = {"g": g_vars["params"], "d": d_vars["params"]}
            stats = {"g": g_vars["batch_stats"], "d": d_vars["batch_stats"]}
            opt = {"g": self.tx_g.init(params["g"]), "d": self.tx_d.init(params["d"])}
            return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats=stats,
                              opt_state=opt)

        return init(jax.random.key(c.seed))

    def step(self, state: TrainState, batch: dict):
        c = self.config
        real = batch["image"].astype(jnp.float32) / 127.5 - 1.0
        y_real = batch["label"] if self.hparams["num_classes"] else jnp.zeros_like(batch["label"])
        step_key = jax.random.fold_in(jax.random.key(c.seed), state.step)
        keys = jax.vmap(lambda i: jax.random.fold_in(step_key, i))(batch["index"])
        z = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(k, 0), (c.generator.z_dim,)))(keys)
        y_fake = jax.vmap(lambda k: jax.random.randint(
            jax.random.fold_in(k, 1), (), 0, max(self.hparams["num_classes"], 1)))(keys)
        params, stats = state.params, state.batch_stats

        def generate(g_params):
            fake, upd = self.g.apply({"params": g_params, "batch_stats": stats["g"]}, z, y_fake,
                                     train=True, mutable=["batch_stats"])
            return fake, upd["batch_stats"]

        fake, g_stats = generate(params["g"])

        def d_loss_fn(d_params):
            both = jnp.concatenate([real, jax.lax.stop_gradient(fake)])
            labels = jnp.concatenate([y_real, y_fake])
            logits, upd = self.d.apply({"params": d_params, "batch_stats": stats["d"]}, both, labels,
                                       train=True, mutable=["batch_stats"])
            n = real.shape[0]
            return losses.hinge_discriminator(logits[:n], logits[n:]), upd["batch_stats"]

        (d_loss, d_stats), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(params["d"])
        d_grads = jax.lax.pmean(d_grads, AXIS)
        d_updates, d_opt = self.tx_d.update(d_grads, state.opt_state["d"], params["d"])
        d_params = optax.apply_updates(params["d"], d_updates)

        def g_loss_fn(g_params):
            fake, new_stats = generate(g_params)
            logits = self.d.apply({"params": d_params, "batch_stats": d_stats}, fake, y_fake,
                                  train=False)
            return losses.hinge_generator(logits), new_stats

        (g_loss, g_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(params["g"])
        g_grads = jax.lax.pmean(g_grads, AXIS)
        g_updates, g_opt = self.tx_g.update(g_grads, state.opt_state["g"], params["g"])
        g_params = optax.apply_updates(params["g"], g_updates)
        metrics = jax.lax.pmean({"d_loss": d_loss, "g_loss": g_loss}, AXIS)
        metrics["loss"] = metrics["d_loss"] + metrics["g_loss"]
        return TrainState(step=state.step + 1, params={"g": g_params, "d": d_params},
                          batch_stats={"g": g_stats, "d": d_stats},
                          opt_state={"g": g_opt, "d": d_opt}), metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        return datasets.batches(self.dataset, self.config.train.batch_size, seed=self.config.seed,
                                start_step=start_step, process_index=process_index,
                                process_count=process_count)

    def generator(self, state: TrainState) -> gen_lib.Generator:
        g = gen_lib.build("dcgan", self.hparams)
        variables = {"params": state.params["g"], "batch_stats": state.batch_stats["g"]}
        return dataclasses.replace(g, params=jax.device_get(variables))

    def sample_grid(self, state: TrainState) -> np.ndarray:
        """(classes, per class, H, W, 3) in [0, 1] from fixed latents."""
        g = self.generator(state)
        rows = max(self.hparams["num_classes"], 1)
        z = jax.random.truncated_normal(jax.random.key(1234), -2, 2, (rows * GRID_PER_CLASS, g.z_dim))
        y = jnp.repeat(jnp.arange(rows), GRID_PER_CLASS)
        images = (jax.jit(g.apply)(g.params, z, y) + 1) / 2
        return np.asarray(images).reshape((rows, GRID_PER_CLASS) + images.shape[1:])

    def finish(self, state: TrainState, workdir: str) -> None:
        g = self.generator(state)
        if jax.process_index() == 0:
            save_grid(f"{workdir}/samples.png", self.sample_grid(state),
                            title=f"samples at step {int(state.step)} (a row per class)")
        gen_lib.save(workdir, g, g.params)
