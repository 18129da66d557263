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
likelihood: its latent is z and a noise image, and G(z, noise, y) is decoded(z, y) with
s · noise added to its background, under the shape's uncovered part, as the data's
shapes are flat colours (models/generators/sprites.py).

The templates are not learned by the gradient. Each class's template is the mean
shape of the first 150 training images of that class, aligned by congealing
(Learned-Miller, "Data driven image models through continuous joint alignment",
PAMI 2006): each image's shape coverage is read off its background (a plane fitted
to its border), centred on its centre of mass, scaled by the square root of its
area, and turned by whichever of 120 rotations matches the running mean best.
Learning them as VAE weights was tried first: the encoder's errors of pose blur
them into their average over poses (a square's corners round off, measured: 7% of
its samples judged squares). The VAE then learns the pose and colour MLP and its
encoder; the reconstruction is scored under `sprites.turns` rotations of the
decoded pose (multiples of 360°/turns) and the best one is kept, so the encoder
need not tell a shape's symmetric poses apart (the transformation search of
Monnier et al.'s DTI-Sprites).

The posteriors of a VAE this sharp (likelihood std 0.08 over 3,072 pixels) are
narrow and far from N(0, I), so sampling z from N(0, I) draws poses and colours
the encoder never found in a real image. At the end the generator's latent prior is
fitted instead, per class, to the Gaussian of the encoder's posterior means on the
training images (`fit_latent_prior`; Ghosh et al.'s ex-post density estimation),
and written into the generator as an affine map of z ~ N(0, I).

The reparameterisation noise of an example is keyed by (seed, step, global index),
like every draw in genviews. The workdir is a generator checkpoint at the end.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from data import datasets, pipeline, views
from models import generators as gen_lib
from models.generators import sprites
from tasks.generator import class_grid, export
from tasks.parallel import AXIS
from tasks.state import TrainState

FIXED = ("templates", "latent_mean", "latent_scale")  # generator params Adam does not move
TEMPLATE_RADIUS = 0.7  # where a template's farthest foreground pixel lies (of its half-side)
TEMPLATE_SHARPNESS = 16.0  # mask logits per unit of congealed coverage around ½
CONGEAL_STEP_DEGREES = 3.0  # the rotations congealing tries


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


def coverage(image: np.ndarray) -> np.ndarray:
    """The soft coverage (H, W) in [0, 1] of a uint8 image's shape: each pixel's residual
    around the background plane (`_background_residual`), projected on the shape's colour
    offset, the median residual of the pixels farther from the background than half the
    largest distance."""
    residual, _ = _background_residual(image.astype(np.float32) / 255.0)
    distance = np.abs(residual).sum(-1)
    offset = np.median(residual[distance > 0.5 * distance.max()], axis=0)
    norm = float(offset @ offset)
    if norm == 0.0:
        return np.zeros(distance.shape, np.float32)
    return np.clip(residual @ offset / norm, 0.0, 1.0).astype(np.float32)


def pixel_noise_std(images: np.ndarray, count: int = 256) -> float:
    """The std of the pixel noise of uint8 images, in the generator's [-1, 1] units: the
    median over the first `count` images of the RMS of their border pixels around the
    fitted background plane (a border pixel can hold a piece of a shape, hence the median)."""
    rms = []
    for image in images[:count]:
        residual, border = _background_residual(image.astype(np.float32) / 255.0)
        rms.append(np.sqrt(np.mean(residual[border] ** 2)))
    return float(2.0 * np.median(rms))


def _centre_and_size(cover: np.ndarray) -> tuple[float, float, float]:
    """(row, column) of a coverage map's centre of mass and the square root of its area."""
    area = float(cover.sum())
    rows, cols = np.mgrid[:cover.shape[0], :cover.shape[1]]
    return float((cover * rows).sum()) / area, float((cover * cols).sum()) / area, np.sqrt(area)


def _posed(cover: np.ndarray, row: float, col: float, half: float, angles: np.ndarray,
           size: int) -> np.ndarray:
    """(len(angles), size, size): the coverage map read in a square frame centred at
    (row, col), `half` pixels from centre to side, turned by each angle (bilinear)."""
    import scipy.ndimage  # 0.4 s to import: here, not at every train.py start

    t = np.linspace(-1.0, 1.0, size) * half
    v, u = np.meshgrid(t, t, indexing="ij")
    c, s = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]  # every angle at once
    return scipy.ndimage.map_coordinates(cover, [row + s * u + c * v, col + c * u - s * v],
                                         order=1, cval=0.0)


def congealed_template(covers: list[np.ndarray], size: int, iterations: int = 3) -> np.ndarray:
    """The mean shape (size, size) in [0, 1] of coverage maps of one class, aligned by
    congealing (Learned-Miller 2006): each map is centred on its centre of mass and scaled
    by the square root of its area, then turned by whichever of CONGEAL_ANGLES matches the
    current mean best (dot product with the mean minus its average); the first map is the
    first mean. Its scale puts the first map's farthest pixel at TEMPLATE_RADIUS."""
    frames = [_centre_and_size(c) for c in covers]
    row, col, size0 = frames[0]
    rows, cols = np.nonzero(covers[0] > 0.5)
    extent = np.hypot(rows - row, cols - col).max() + 0.5
    half_per_size = extent / TEMPLATE_RADIUS / size0
    angles = np.deg2rad(np.arange(0.0, 360.0, CONGEAL_STEP_DEGREES))
    turned = [_posed(c, r, k, half_per_size * a, angles, size)
              for c, (r, k, a) in zip(covers, frames, strict=True)]
    mean = turned[0][0]
    for _ in range(iterations):
        centred = mean - mean.mean()
        mean = np.mean([t[np.argmax(np.tensordot(t, centred, 2))] for t in turned], axis=0)
    return mean


def congealed_templates(images: np.ndarray, labels: np.ndarray, num_classes: int, size: int,
                        per_class: int = 150) -> np.ndarray:
    """Templates (num_classes, size, size) of mask logits, TEMPLATE_SHARPNESS · (m − ½) of
    the congealed mean m of the first `per_class` images of each class whose coverage is
    not blank. A class without such images gets `sprites.disc_template`'s disc."""
    templates = np.array(np.broadcast_to(sprites.disc_template(size), (num_classes, size, size)))
    for c in range(num_classes):
        covers = [coverage(images[i]) for i in np.nonzero(labels == c)[0][:per_class]]
        covers = [cover for cover in covers if cover.sum() >= 1.0]
        if covers:
            templates[c] = TEMPLATE_SHARPNESS * (congealed_template(covers, size) - 0.5)
    return templates.astype(np.float32)


def fit_latent_prior(means: np.ndarray, labels: np.ndarray, num_classes: int,
                     jitter: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    """Per class, the mean (C, d) and the Cholesky factor (C, d, d) of the covariance
    (plus `jitter` · I) of posterior means (N, d): the generator's `latent_mean` and
    `latent_scale`. A class with fewer than d + 1 examples keeps N(0, I)."""
    d = means.shape[1]
    mean = np.zeros((num_classes, d), np.float32)
    scale = np.tile(np.eye(d, dtype=np.float32), (num_classes, 1, 1))
    for c in range(num_classes):
        rows = means[labels == c].astype(np.float64)
        if len(rows) > d:
            mean[c] = rows.mean(0)
            scale[c] = np.linalg.cholesky(np.cov(rows, rowvar=False) + jitter * np.eye(d))
    return mean, scale


class SpritesTask:
    def __init__(self, config):
        c = self.config = config
        self.frozen = {}
        self.dataset = datasets.load(c.data.name, c.data.split, image_size=c.generator.resolution,
                                     data_dir=c.data.data_dir, max_examples=c.data.max_examples)
        self.hparams = {"z_dim": c.generator.z_dim, "num_classes": self.dataset.num_classes,
                        "resolution": c.generator.resolution, "width": c.generator.width,
                        "noise_std": pixel_noise_std(self.dataset.images)}
        self.g = sprites.SpriteGenerator(c.generator.z_dim, self.dataset.num_classes,
                                         c.generator.resolution, c.generator.width)
        self.encoder = sprites.SpriteEncoder(c.generator.z_dim, self.dataset.num_classes,
                                             c.sprites.encoder_width)
        # The templates (congealed from real images) and the latent prior (fitted at the end)
        # are not trained by the gradient: everything else is, by Adam.
        fixed = lambda params: {"g": {k: "fixed" if k in FIXED else "adam" for k in params["g"]},
                                "e": jax.tree.map(lambda _: "adam", params["e"])}
        self.tx = optax.multi_transform({"adam": optax.adam(c.sprites.lr),
                                         "fixed": optax.set_to_zero()}, fixed)

    def init_state(self) -> TrainState:
        c = self.config
        templates = congealed_templates(self.dataset.images, self.dataset.labels,
                                        self.dataset.num_classes, self.g.template_size)

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

    def step(self, state: TrainState, batch: dict, frozen: dict):
        del frozen  # this task reads nothing frozen (self.frozen is {})
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
        return pipeline.batches(self.dataset, self.config.train.batch_size, seed=self.config.seed,
                                start_step=start_step, process_index=process_index,
                                process_count=process_count, workers=self.config.data.workers)

    def generator(self, state: TrainState, params_g: dict | None = None) -> gen_lib.Generator:
        g = gen_lib.build("sprites", self.hparams)
        params_g = jax.device_get(state.params["g"]) if params_g is None else params_g
        return dataclasses.replace(g, params={"params": params_g})

    def sample_grid(self, state: TrainState) -> np.ndarray:
        return class_grid(self.generator(state))

    def posterior_means(self, state: TrainState, chunk: int = 1000) -> np.ndarray:
        """The encoder's posterior means (N, z_dim) of the training images."""
        params = jax.device_get(state.params["e"])
        encode = jax.jit(lambda x, y: self.encoder.apply({"params": params}, x, y)[0])
        images, labels = self.dataset.images, self.dataset.labels.astype(np.int32)
        return np.concatenate([np.asarray(encode(images[i:i + chunk].astype(np.float32) / 127.5 - 1.0,
                                                 labels[i:i + chunk]))
                               for i in range(0, len(labels), chunk)])

    def finish(self, state: TrainState, workdir: str) -> None:
        params_g = dict(jax.device_get(state.params["g"]))
        params_g["latent_mean"], params_g["latent_scale"] = fit_latent_prior(
            self.posterior_means(state), self.dataset.labels, self.dataset.num_classes)
        export(workdir, self.generator(state, params_g), int(state.step))
