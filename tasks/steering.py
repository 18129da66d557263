"""Learning steering walks of a frozen generator ("On the steerability of GANs",
Jahanian et al., ICLR 2020).

For each walk in `steer.walks` a linear direction w (one per parameter of the
walk's edit, data/edits.py) is learned so that G(z + α·w) matches the pixel
edit of G(z) by α, for random α in the ranges of `steer.*`: the loss is the
masked MSE (pixels an edit brings in from outside the image do not count), summed
over walks, minimised with Adam. Every walk sees every example of a batch.

Anchors, classes and steps are keyed by (seed, step, global example index) like
every draw in genviews; numerators and mask sums of the masked mean are summed
over devices before dividing, so the loss is that of the global batch. At the end
the workdir becomes a walks checkpoint (data/walks.py) that `views.walks` names,
with `walks.png`: per walk, a row of G(z + α·w) over the range of α and below it
the pixel edit it imitates.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import edits, views
from data import walks as walks_lib
from data.grids import save_grid
from tasks.contrastive import load_generator, make_optimizer
from tasks.parallel import AXIS
from tasks.state import TrainState

GRID_ANCHORS = 2
GRID_STEPS = 7


class SteeringTask:
    def __init__(self, config):
        c = self.config = config
        self.generator = load_generator(c)
        self.frozen = {"generator": self.generator.params}  # an argument of the step (Runner)
        self.names = tuple(c.steer.walks)
        self.ranges = walks_lib.StepRanges.of_config(c)
        self.tx = make_optimizer(c)

    def init_state(self) -> TrainState:
        params = walks_lib.zeros(self.generator.z_dim, self.names)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                          batch_stats=jnp.zeros(()), opt_state=self.tx.init(params))

    def render(self, z: jax.Array, y: jax.Array, frozen: dict | None = None) -> jax.Array:
        """G(z, y) with the generator parameters of `frozen` (the step's; default self.frozen)."""
        g = self.generator
        return g.apply((frozen or self.frozen)["generator"], z, y, self.config.generator.truncation)

    def anchors(self, keys: jax.Array) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
        """Each example's anchor latent, class and random step per walk, from its key."""
        c, g = self.config, self.generator
        z, y = views.anchors(keys, z_dim=g.z_dim, num_classes=g.num_classes,
                             truncation=c.generator.truncation)
        steps = jax.vmap(lambda k: walks_lib.sample_steps(
            jax.random.fold_in(k, 1), self.names, self.ranges))(keys)
        return z, y, steps

    def losses(self, directions, z, y, steps, axis_name: str | None = None,
               frozen: dict | None = None) -> dict[str, jax.Array]:
        """Per walk: the masked MSE of G(z + α·w) against edit(G(z), α) (`NAME_mse`) and of
        G(z) itself, i.e. no walk (`NAME_mse_no_walk`). With `axis_name`, z is one device's
        share and each value is its share of the global batch's masked mean."""
        base = self.render(z, y, frozen)
        out = {}
        for name in self.names:
            target, mask = jax.vmap(functools.partial(edits.edit, name))(base, steps[name])
            moved = self.render(z + steps[name] @ directions[name], y, frozen)
            num, den = jax.vmap(edits.masked_mse)(moved, target, mask)
            num0, _ = jax.vmap(edits.masked_mse)(base, target, mask)
            den = den.sum() if axis_name is None else jax.lax.psum(den.sum(), axis_name)
            out[f"{name}_mse"] = num.sum() / den
            out[f"{name}_mse_no_walk"] = num0.sum() / den
        return out

    def step(self, state: TrainState, batch: dict, frozen: dict):
        c = self.config
        z, y, steps = self.anchors(views.example_keys(c.seed, state.step, batch["index"]))

        def loss_fn(directions):
            parts = self.losses(directions, z, y, steps, AXIS, frozen)
            return sum(parts[f"{n}_mse"] for n in self.names), parts

        grads, parts = jax.grad(loss_fn, has_aux=True)(state.params)
        grads = jax.lax.psum(grads, AXIS)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = jax.lax.psum(parts, AXIS)
        metrics["loss"] = sum(metrics[f"{n}_mse"] for n in self.names) / len(self.names)
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        return views.index_batches(self.config.train.batch_size, process_index, process_count)

    def walk_grid(self, directions) -> jax.Array:
        """(2·walks·anchors, GRID_STEPS, H, W, 3) in [0, 1]: per walk and anchor, a row of
        G(z + α·w) for α across its range, then a row of the pixel edits it imitates.
        The colour walk is shown on the red channel."""
        keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(1234), i))(
            jnp.arange(GRID_ANCHORS))
        z, y, _ = self.anchors(keys)
        rows = []
        for name in self.names:
            bound = self.ranges.bound(name)
            alphas = np.zeros((GRID_STEPS, edits.WALK_DIMS[name]), np.float32)
            alphas[:, 0] = np.linspace(-bound, bound, GRID_STEPS)
            alphas = jnp.asarray(alphas)
            for i in range(GRID_ANCHORS):
                zs = z[i] + alphas @ directions[name]
                moved = self.render(zs, jnp.repeat(y[i], GRID_STEPS))
                base = self.render(z[i:i + 1], y[i:i + 1])[0]
                target, mask = jax.vmap(functools.partial(edits.edit, name), in_axes=(None, 0))(
                    base, alphas)
                rows += [moved, target * mask]
        return views.to_unit(jnp.stack(rows))

    def finish(self, state: TrainState, workdir: str) -> None:
        directions = jax.device_get(state.params)
        if jax.process_index() == 0:
            save_grid(f"{workdir}/walks.png", np.asarray(jax.jit(self.walk_grid)(directions)),
                      title=f"walks {', '.join(self.names)}: G(z + a·w) above the edit", scale=2)
        g = self.config.generator
        walks_lib.save(workdir, walks_lib.Walks(directions, self.ranges),
                       generator=g.checkpoint if g.init == "checkpoint" else "random")
