"""Pretraining the sprite generator (models/generators/sprites.py) as a VAE decoder.

The generator is the decoder p(x | z, y) of a class-conditional variational
autoencoder (Kingma & Welling 2014): an encoder q(z | x, y) (a ConvNet) gives a
Gaussian over z, a reparameterised sample is drawn and decoded, and the loss is
the negative ELBO per image (for β = 1),

    ‖G(z, y) − x‖² / (2 s²) + β · KL(q(z | x, y) ‖ N(0, I)),

with images in [−1, 1], the likelihood's standard deviation s the std of the
data's pixel noise, measured on the border pixels of real images
(`pixel_noise_std`), and β = `sprites.kl_weight` (below 1 the posteriors
narrow, so the templates blur less over pose). The exported generator samples that
likelihood: its latent is z and a noise image, so G(z, noise, y) = decoded(z, y) +
s · noise (models/generators/sprites.py).

Two choices make the templates learn the shapes rather than their average over
poses:

- each class's template starts from the foreground of one real image of that class
  (of the split's first 16 of the class, the one of highest contrast), found by its
  colour distance to a plane fitted to the image's border:
  a template that starts as a disc is symmetric under rotation, so no gradient
  could ever turn it (the prototype initialisation of k-means-like sprite models);
- the reconstruction is scored under `sprites.turns` rotations of the decoded pose
  (multiples of 360°/turns) and the best one is kept, so a wrong guess of the
  rotation by the encoder does not blur the template (the transformation search of
  Monnier et al.'s DTI-Sprites). The sampled generator uses the pose its MLP gives,
  whose rotation is uniform anyway.

The reparameterisation noise of an example is keyed by (seed, step, global index),
like every draw in genviews. The workdir is a generator checkpoint at the end.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.ndimage

from data import datasets, views
from models import generators as gen_lib
from models.generators import sprites
from tasks.generator import class_grid, export
from tasks.parallel import AXIS
from tasks.state import TrainState

TEMPLATE_RADIUS = 0.7  # where an initial template's farthest foreground pixel lies


def _background_residual(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The residual (H, W, 3) of an image in [0, 1] around its background, a plane per
    channel fitted to its border pixels by least squares, and the border's mask."""
    side = image.shape[0]
    t = np.linspace(-1.0, 1.0, side)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    border = np.zeros((side, side), bool)
    border[[0, -1]] = border[:, [0, -1]] = True
    design = np.stack([np.ones_like(xx), xx, yy], -1)
    coef, *_ = np.linalg.lstsq(design[border], image[border], rcond=None)
    return image - design @ coef, border


def foreground(image: np.ndarray) -> tuple[np.ndarray, float]:
    """A 0/1 mask of the pixels of a uint8 image (H, W, 3) that stand out from its
    background, and its contrast: a pixel is foreground when its colour is farther from
    the background (`_background_residual`) than half the largest distance; the contrast
    is the mean distance of the foreground minus that of the rest."""
    residual, _ = _background_residual(image.astype(np.float32) / 255.0)
    distance = np.abs(residual).sum(-1)
    mask = distance > 0.5 * distance.max()
    if mask.all() or not mask.any():
        return mask.astype(np.float32), 0.0
    return mask.astype(np.float32), float(distance[mask].mean() - distance[~mask].mean())


def pixel_noise_std(images: np.ndarray, count: int = 256) -> float:
    """The std of the pixel noise of uint8 images, in the generator's [-1, 1] units: the
    median over the first `count` images of the RMS of their border pixels around the
    fitted background plane (a border pixel can hold a piece of a shape, hence the median)."""
    rms = []
    for image in images[:count]:
        residual, border = _background_residual(image.astype(np.float32) / 255.0)
        rms.append(np.sqrt(np.mean(residual[border] ** 2)))
    return float(2.0 * np.median(rms))


def templates_from_images(images: np.ndarray, labels: np.ndarray, num_classes: int,
                          size: int, candidates: int = 16) -> np.ndarray:
    """Initial templates (num_classes, size, size) of mask logits: the foreground of one
    image of each class (of its first `candidates`, the one of highest contrast), centred
    on its centre of mass and scaled so that its farthest pixel lies at TEMPLATE_RADIUS
    from the centre. A class without images, or whose images are blank, gets
    `sprites.disc_template`'s disc."""
    templates = np.array(np.broadcast_to(sprites.disc_template(size), (num_classes, size, size)))
    for c in range(num_classes):
        found = [foreground(images[i]) for i in np.nonzero(labels == c)[0][:candidates]]
        if not found:
            continue
        mask, contrast = max(found, key=lambda f: f[1])
        if contrast <= 0:  # blank images: nothing stands out
            continue
        cy, cx = scipy.ndimage.center_of_mass(mask)
        py, px = np.nonzero(mask)
        radius = np.hypot(py - cy, px - cx).max() + 0.5  # in pixels
        t = np.linspace(-1.0, 1.0, size) * radius / TEMPLATE_RADIUS
        coords = np.meshgrid(t + cy, t + cx, indexing="ij")
        templates[c] = 8.0 * (scipy.ndimage.map_coordinates(mask, coords, order=1) - 0.5)
    return templates.astype(np.float32)


class SpritesTask:
    def __init__(self, config):
        c = self.config = config
        self.dataset = datasets.load(c.data.name, c.data.split, image_size=c.generator.resolution,
                                     data_dir=c.data.data_dir, max_examples=c.data.max_examples)
        self.hparams = {"z_dim": c.generator.z_dim, "num_classes": self.dataset.num_classes,
                        "resolution": c.generator.resolution, "width": c.generator.width,
                        "noise_std": pixel_noise_std(self.dataset.images)}
        self.g = sprites.SpriteGenerator(c.generator.z_dim, self.dataset.num_classes,
                                         c.generator.resolution, c.generator.width)
        self.encoder = sprites.SpriteEncoder(c.generator.z_dim, self.dataset.num_classes,
                                             c.sprites.encoder_width)
        self.tx = optax.adam(c.sprites.lr)

    def init_state(self) -> TrainState:
        c = self.config
        templates = templates_from_images(
            self.dataset.images, self.dataset.labels, self.dataset.num_classes,
            self.g.template_size)

        @jax.jit
        def init(key):
            kg, ke = jax.random.split(key)
            z = jnp.zeros((1, c.generator.z_dim))
            y = jnp.zeros((1,), jnp.int32)
            x = jnp.zeros((1, c.generator.resolution, c.generator.resolution, 3))
            g = self.g.init(kg, z, y)["params"]
            g["templates"] = templates
            params = {"g": g, "e": self.encoder.init(ke, x, y)["params"]}
            return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={},
                              opt_state=self.tx.init(params))

        return init(jax.random.key(c.seed))

    def loss(self, params, images, labels, keys):
        """The negative ELBO per image (and its reconstruction and KL terms), images in
        [−1, 1]; the reconstruction is the best of `sprites.turns` rotations."""
        c = self.config
        mean, log_var = self.encoder.apply({"params": params["e"]}, images, labels)
        eps = jax.vmap(lambda k: jax.random.normal(k, (c.generator.z_dim,)))(keys)
        z = mean + jnp.exp(0.5 * log_var) * eps
        errors = []
        for k in range(c.sprites.turns):
            decoded = self.g.apply({"params": params["g"]}, z, labels, 2 * jnp.pi * k / c.sprites.turns)
            errors.append(jnp.sum((decoded - images) ** 2, axis=(1, 2, 3)))
        reconstruction = jnp.min(jnp.stack(errors), 0) / (2 * self.hparams["noise_std"] ** 2)
        kl = 0.5 * jnp.sum(mean ** 2 + jnp.exp(log_var) - 1.0 - log_var, -1)
        return reconstruction + c.sprites.kl_weight * kl, reconstruction, kl

    def step(self, state: TrainState, batch: dict):
        c = self.config
        images = batch["image"].astype(jnp.float32) / 127.5 - 1.0
        keys = views.example_keys(c.seed, state.step, batch["index"])

        def loss_fn(params):
            loss, reconstruction, kl = self.loss(params, images, batch["label"], keys)
            return loss.mean(), (reconstruction.mean(), kl.mean())

        (loss, (reconstruction, kl)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        grads = jax.lax.pmean(grads, AXIS)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = jax.lax.pmean({"loss": loss, "reconstruction": reconstruction, "kl": kl}, AXIS)
        return dataclasses.replace(state, step=state.step + 1, params=params,
                                   opt_state=opt_state), metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        return datasets.batches(self.dataset, self.config.train.batch_size, seed=self.config.seed,
                                start_step=start_step, process_index=process_index,
                                process_count=process_count)

    def generator(self, state: TrainState) -> gen_lib.Generator:
        g = gen_lib.build("sprites", self.hparams)
        return dataclasses.replace(g, params=jax.device_get({"params": state.params["g"]}))

    def sample_grid(self, state: TrainState) -> np.ndarray:
        return class_grid(self.generator(state))

    def finish(self, state: TrainState, workdir: str) -> None:
        export(workdir, self.generator(state), int(state.step))
