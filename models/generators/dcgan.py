"""The small class-conditional GAN that genviews pretrains on the embedded dataset.

Generator: [z, embed(y)] → 4×4 → (4×4 transposed conv /2, BatchNorm, ReLU)* →
3×3 conv → tanh, as DCGAN. Discriminator: spectral-normalised strided
convolutions with a projection head for the class (Miyato & Koyama 2018),
trained with the hinge loss (losses.hinge_*). At sampling time the generator's
BatchNorm uses its running statistics, so an image depends only on its own z, y.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.encoders import batch_norm
from models.generators import Generator, register


def _num_upsamplings(resolution: int) -> int:
    n = int(round(math.log2(resolution / 4)))
    if 4 * 2 ** n != resolution:
        raise ValueError(f"generator resolution must be 4·2^k, got {resolution}")
    return n


class DCGANGenerator(nn.Module):
    z_dim: int
    num_classes: int
    resolution: int = 32
    width: int = 64
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, y, train: bool = False):
        n = _num_upsamplings(self.resolution)
        norm = batch_norm(train, self.axis_name)
        h = z
        if self.num_classes:
            h = jnp.concatenate([z, nn.Embed(self.num_classes, self.z_dim)(y)], -1)
        channels = self.width * 2 ** (n - 1)
        h = nn.Dense(4 * 4 * channels)(h).reshape(z.shape[0], 4, 4, channels)
        h = nn.relu(norm()(h))
        for i in range(n):
            channels = self.width * 2 ** (n - 2 - i) if i < n - 1 else self.width // 2
            h = nn.ConvTranspose(channels, (4, 4), (2, 2), padding="SAME", use_bias=False)(h)
            h = nn.relu(norm()(h))
        return jnp.tanh(nn.Conv(3, (3, 3))(h))


MBSTD_GROUP = 4


def minibatch_std(h: jax.Array, group: int = MBSTD_GROUP) -> jax.Array:
    """Appends the mean feature std over groups of `group` consecutive examples (ProGAN).

    A collapsed generator's samples look alike within a group, which the
    discriminator then sees directly. Groups never mix real and fake examples as
    long as each half of the discriminator's batch is a multiple of `group`.
    """
    b = h.shape[0]
    g = group if b % group == 0 else 1
    grouped = h.reshape((b // g, g) + h.shape[1:])
    std = jnp.sqrt(grouped.var(axis=1) + 1e-8).mean(axis=(1, 2, 3))  # (b/g,)
    std = jnp.repeat(std, g)[:, None, None, None]
    return jnp.concatenate([h, jnp.broadcast_to(std, h.shape[:3] + (1,))], -1)


class ProjectionDiscriminator(nn.Module):
    num_classes: int
    width: int = 64

    @nn.compact
    def __call__(self, x, y, train: bool = True):
        def sn(layer):
            return nn.SpectralNorm(layer)

        h = x
        channels = self.width
        while h.shape[1] > 4:
            h = nn.leaky_relu(sn(nn.Conv(channels, (4, 4), 2))(h, update_stats=train), 0.1)
            channels *= 2
        h = minibatch_std(h)
        h = nn.leaky_relu(sn(nn.Conv(channels, (3, 3)))(h, update_stats=train), 0.1)
        features = jnp.sum(h, axis=(1, 2))
        out = sn(nn.Dense(1))(features, update_stats=train)[:, 0]
        if self.num_classes:
            embed = sn(nn.Embed(self.num_classes, features.shape[-1]))
            out = out + jnp.sum(embed(y, update_stats=train) * features, -1)
        return out


def init_params(hparams: dict, key: jax.Array) -> dict:
    """Random generator variables (params and BatchNorm statistics) for `hparams`."""
    module = DCGANGenerator(**{k: hparams[k] for k in ("z_dim", "num_classes", "resolution", "width")})
    z = jnp.zeros((1, hparams["z_dim"]))
    return jax.jit(module.init)(key, z, jnp.zeros((1,), jnp.int32))


@register("dcgan")
def build(hparams: dict) -> Generator:
    """hparams: z_dim, num_classes, resolution, width. `truncation` scales nothing here:
    the latent sampler already draws truncated anchors."""
    module = DCGANGenerator(z_dim=hparams["z_dim"], num_classes=hparams["num_classes"],
                            resolution=hparams["resolution"], width=hparams["width"])

    def apply(params, z, y, truncation: float = 1.0):
        del truncation
        return module.apply(params, z, y, train=False)

    return Generator(family="dcgan", hparams=dict(hparams), params=None, apply=apply,
                     z_dim=hparams["z_dim"], num_classes=hparams["num_classes"],
                     resolution=hparams["resolution"],
                     init=lambda key: init_params(hparams, key))
