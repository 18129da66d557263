"""A class-conditional sprite generator: a learned shape per class, posed and coloured by z.

The image of (z, y) is drawn in layers, as in transformation-invariant sprite
models (Monnier et al., "Unsupervised Layered Image Decomposition into Object
Prototypes", ICCV 2021; LR-GAN, Yang et al. 2017):

- an MLP maps z and the class embedding to a pose (rotation, scale, centre), a
  foreground colour, a background colour and a linear background gradient;
- each class has a learned template, an image of mask logits in the shape's own
  frame; the pose's inverse maps every pixel centre (2×2 supersampled) into that
  frame, where the template is sampled bilinearly; the sigmoid of the samples,
  averaged over each pixel's supersamples, is the pixel's coverage;
- image = coverage · foreground + (1 − coverage) · background.

Everything is learned from real images (tasks/sprites.py trains it as the decoder
of a variational autoencoder). The templates are what make every sample draw its
class; z moves pose and colour smoothly, so latent views G(z + σε) are the same
shape moved, turned, rescaled and recoloured.

The templates come from real images by congealing, and the latent's prior from
the VAE's posteriors (tasks/sprites.py): z ~ N(0, I) is mapped per class to
N(μ_y, Σ_y), the Gaussian of its encoder's posterior means, so a sample's pose and
colours follow those the encoder found in real images ("ex-post density
estimation", Ghosh et al., ICLR 2020).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.generators import Generator, register

_OUTSIDE = -12.0  # mask logit outside the template's square: background


def disc_template(size: int) -> jax.Array:
    """Template init: a centred disc of radius 0.5 in mask logits."""
    t = jnp.linspace(-1.0, 1.0, size)
    r = jnp.hypot(t[:, None], t[None, :])
    return 8.0 * (0.5 - r)


def _sample(template: jax.Array, u: jax.Array, v: jax.Array) -> jax.Array:
    """Bilinear samples of a (T, T) template at frame coordinates u (right), v (down) in
    [-1, 1]; outside the square it reads _OUTSIDE."""
    size = template.shape[0]
    rows = (v + 1.0) * 0.5 * (size - 1)
    cols = (u + 1.0) * 0.5 * (size - 1)
    return jax.scipy.ndimage.map_coordinates(template, [rows, cols], order=1, mode="constant",
                                             cval=_OUTSIDE)


def render(templates, turn, scale, centre, fg, bg, gradient, resolution: int,
           supersample: int, noise=None) -> jax.Array:
    """Images (B, R, R, 3) of posed templates (B, T, T) over shaded backgrounds.

    turn (B, 2): (cos, sin) of the rotation; scale (B,): the shape's half-size as a
    fraction of half the image; centre (B, 2): (x, y) in [-1, 1]; fg, bg (B, 3)
    colours; gradient (B, 2): the background's slope along x and y. A pixel's
    coverage is the mean over its supersample² points of the sigmoid of the template
    sampled at the point's coordinates in the shape's frame. `noise` (B, R, R, 3), if
    given, is added to the background only, under the shape's uncovered part, as
    genviews_shapes draws its images (data/shapes.py): a shape's own colour is flat."""
    s = resolution * supersample
    grid = (jnp.arange(s) + 0.5) / s * 2.0 - 1.0  # pixel centres in [-1, 1]
    gy, gx = jnp.meshgrid(grid, grid, indexing="ij")
    cos, sin = turn[:, 0, None, None], turn[:, 1, None, None]
    dx = gx[None] - centre[:, 0, None, None]
    dy = gy[None] - centre[:, 1, None, None]
    u = (cos * dx + sin * dy) / scale[:, None, None]
    v = (-sin * dx + cos * dy) / scale[:, None, None]
    logits = jax.vmap(_sample)(templates, u, v)
    k = supersample
    cover = nn.sigmoid(logits).reshape(-1, resolution, k, resolution, k).mean((2, 4))[..., None]
    coarse = (jnp.arange(resolution) + 0.5) / resolution * 2.0 - 1.0
    cy, cx = jnp.meshgrid(coarse, coarse, indexing="ij")
    shade = gradient[:, 0, None, None] * cx + gradient[:, 1, None, None] * cy
    background = bg[:, None, None, :] + shade[..., None]
    if noise is not None:
        background = background + noise
    image = cover * fg[:, None, None, :] + (1 - cover) * background
    return jnp.clip(image, -1.0, 1.0)


class SpriteGenerator(nn.Module):
    z_dim: int
    num_classes: int
    resolution: int = 32
    width: int = 128
    template_size: int = 48
    supersample: int = 2

    @nn.compact
    def __call__(self, z, y, turn_offset=0.0, noise=None):
        """Images in [-1, 1] of latents z (B, z_dim) and classes y (B,); `turn_offset` (radians,
        a scalar or one per image) is added to every pose's rotation (training scores several,
        tasks/sprites.py; sampling draws it from the latent, `build`); `noise` (B, R, R, 3) is
        the background's pixel noise (`render`)."""
        # The prior of z per class, N(latent_mean[y], LLᵀ) with L = latent_scale[y], written
        # as an affine map of a standard normal z; N(0, I) while the VAE trains, then fitted
        # to its encoder's posterior means (tasks/sprites.py, `fit_latent_prior`).
        mean = self.param("latent_mean", nn.initializers.zeros, (self.num_classes, self.z_dim))
        scale = self.param("latent_scale", lambda key, shape: jnp.broadcast_to(
            jnp.eye(self.z_dim), shape), (self.num_classes, self.z_dim, self.z_dim))
        z = jnp.take(mean, y, axis=0) + jnp.einsum("bij,bj->bi", jnp.take(scale, y, axis=0), z)
        e = nn.Embed(self.num_classes, 32, name="class_embedding")(y)
        h = nn.relu(nn.Dense(self.width)(jnp.concatenate([z, e], -1)))
        h = nn.relu(nn.Dense(self.width)(h))
        turn = nn.Dense(2, name="rotation")(h)
        turn = turn / jnp.sqrt(jnp.sum(turn ** 2, -1, keepdims=True) + 1e-6)
        co, so = jnp.cos(turn_offset), jnp.sin(turn_offset)
        turn = jnp.stack([co * turn[:, 0] - so * turn[:, 1], so * turn[:, 0] + co * turn[:, 1]], -1)
        scale = 0.2 + 1.2 * nn.sigmoid(nn.Dense(1, name="scale")(h))
        centre = 0.6 * jnp.tanh(nn.Dense(2, name="centre")(h))
        fg = jnp.tanh(nn.Dense(3, name="foreground")(h))
        bg = jnp.tanh(nn.Dense(3, name="background")(h))
        gradient = 0.6 * jnp.tanh(nn.Dense(2, name="gradient")(h))
        templates = self.param("templates", lambda key, shape: jnp.broadcast_to(
            disc_template(self.template_size), shape), (self.num_classes,) + (self.template_size,) * 2)

        return render(jnp.take(templates, y, axis=0), turn, scale[:, 0], centre, fg, bg, gradient,
                      self.resolution, self.supersample, noise)


class SpriteEncoder(nn.Module):
    """q(z | x, y): the mean and log-variance of z for images in [-1, 1] of classes y."""

    z_dim: int
    num_classes: int
    width: int = 32

    @nn.compact
    def __call__(self, x, y):
        h = x
        for i, c in enumerate((self.width, 2 * self.width, 4 * self.width, 4 * self.width)):
            h = nn.relu(nn.Conv(c, (3, 3), strides=1 if i == 0 else 2)(h))
        h = h.reshape(h.shape[0], -1)
        e = nn.Embed(self.num_classes, 32)(y)
        h = nn.relu(nn.Dense(256)(jnp.concatenate([h, e], -1)))
        return nn.Dense(self.z_dim, name="mean")(h), nn.Dense(self.z_dim, name="log_var")(h)


def _module(hparams: dict) -> SpriteGenerator:
    return SpriteGenerator(z_dim=hparams["z_dim"], num_classes=hparams["num_classes"],
                           resolution=hparams["resolution"], width=hparams["width"])


def init_params(hparams: dict, key: jax.Array) -> dict:
    z = jnp.zeros((1, hparams["z_dim"]))
    return jax.jit(_module(hparams).init)(key, z, jnp.zeros((1,), jnp.int32))


@register("sprites")
def build(hparams: dict) -> Generator:
    """hparams: z_dim (of the pose and colours), num_classes, resolution, width (of the pose
    and colour MLP), noise_std (of the pixel noise; 0: none).

    The generator's latent is z_dim + 1 (+ resolution² · 3 with noise_std > 0) long: its
    first z_dim entries pose and colour the sprite; the next, t, turns it by 2π·Φ(t) (Φ the
    standard normal CDF), so that a sample's rotation is uniform, as in the data, whatever
    the MLP's (the VAE learns that one only up to a multiple of 2π/`sprites.turns`); the
    others, times noise_std, are the pixel noise added to its background (the shape's
    colour is flat, as in genviews_shapes): the Gaussian likelihood of the VAE that trained
    it (tasks/sprites.py), written as a latent, so a latent view G(z + σε) also moves the
    noise by σε."""
    if not hparams["num_classes"]:
        raise ValueError("the sprites generator is class-conditional: num_classes must be > 0")
    module = _module(hparams)
    content, side = hparams["z_dim"], hparams["resolution"]
    noise_std = float(hparams.get("noise_std", 0.0))

    def apply(params, z, y, truncation: float = 1.0):
        del truncation
        turn = 2.0 * jnp.pi * jax.scipy.special.ndtr(z[:, content])
        noise = None
        if noise_std:
            noise = noise_std * z[:, content + 1:].reshape(z.shape[0], side, side, 3)
        return module.apply(params, z[:, :content], y, turn, noise)

    z_dim = content + 1 + (side * side * 3 if noise_std else 0)
    return Generator(family="sprites", hparams=dict(hparams), params=None, apply=apply,
                     z_dim=z_dim, num_classes=hparams["num_classes"],
                     resolution=hparams["resolution"],
                     init=lambda key: init_params(hparams, key))
