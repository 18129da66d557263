"""A class-conditional ResNet GAN that genviews can pretrain on any image dataset.

Generator (SNGAN/BigGAN-style, Miyato et al. 2018; Brock et al. 2019): z → 4×4 →
residual up-blocks (BatchNorm whose gain and bias are embeddings of the class,
ReLU, nearest ×2, 3×3 conv) → BN, ReLU, 3×3 conv, tanh. Discriminator: residual
down-blocks with spectral normalisation and a projection term for the class
(Miyato & Koyama 2018). Classifier: a plain ConvNet trained beside them on real
images, whose cross-entropy on the generator's samples the training task
(tasks/generator.py) adds to the generator's loss, so that every sample draws the
class it was asked for (the auxiliary classifier of AC-GAN, Odena et al. 2017, kept
out of the spectrally normalised, augmented discriminator, where it learned too
slowly). At sampling time the generator's BatchNorm uses stored statistics, so an
image depends only on its own z and y.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

from models.encoders import ConvNet, batch_norm
from models.generators import Generator, register


def _num_upsamplings(resolution: int) -> int:
    n = int(round(math.log2(resolution / 4)))
    if n < 1 or 4 * 2 ** n != resolution:
        raise ValueError(f"generator resolution must be 4·2^k (k ≥ 1), got {resolution}")
    return n


def _generator_channels(width: int, n: int) -> list[int]:
    """Channels at 4×4, 8×8, ...: 4w, halving at each doubling of the side, at least w/2.
    Cheap at full resolution: sampling views inside every train step costs little."""
    return [max(4 * width >> i, width // 2) for i in range(n + 1)]


def _discriminator_channels(width: int, n: int) -> list[int]:
    """Channels of the down-blocks from full size: w, 2w, 4w, then 4w at 4×4."""
    return [width * min(2 ** i, 4) for i in range(n + 1)]


class ConditionalBatchNorm(nn.Module):
    """BatchNorm without affine terms, then a gain 1 + γ(y) and a bias β(y) per class."""

    num_classes: int
    train: bool
    axis_name: str | None

    @nn.compact
    def __call__(self, h, y):
        h = batch_norm(self.train, self.axis_name)(use_scale=False, use_bias=False)(h)
        c = h.shape[-1]
        if not self.num_classes:
            gain = self.param("gain", nn.initializers.zeros, (c,))
            bias = self.param("bias", nn.initializers.zeros, (c,))
            return h * (1 + gain) + bias
        gain = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="gain")(y)
        bias = nn.Embed(self.num_classes, c, embedding_init=nn.initializers.zeros, name="bias")(y)
        return h * (1 + gain[:, None, None]) + bias[:, None, None]


def _upsample(h):
    b, s, _, c = h.shape
    return jax.image.resize(h, (b, 2 * s, 2 * s, c), "nearest")


class UpBlock(nn.Module):
    channels: int
    num_classes: int
    train: bool
    axis_name: str | None

    @nn.compact
    def __call__(self, h, y):
        cbn = lambda: ConditionalBatchNorm(self.num_classes, self.train, self.axis_name)
        x = _upsample(nn.relu(cbn()(h, y)))
        x = nn.Conv(self.channels, (3, 3))(x)
        x = nn.Conv(self.channels, (3, 3))(nn.relu(cbn()(x, y)))
        return x + nn.Conv(self.channels, (1, 1))(_upsample(h))


class ResNetGenerator(nn.Module):
    z_dim: int
    num_classes: int
    resolution: int = 32
    width: int = 32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, z, y, train: bool = False):
        n = _num_upsamplings(self.resolution)
        channels = _generator_channels(self.width, n)
        h = nn.Dense(4 * 4 * channels[0])(z).reshape(z.shape[0], 4, 4, channels[0])
        for c in channels[1:]:
            h = UpBlock(c, self.num_classes, train, self.axis_name)(h, y)
        h = nn.relu(batch_norm(train, self.axis_name)()(h))
        return jnp.tanh(nn.Conv(3, (3, 3))(h))


class DownBlock(nn.Module):
    channels: int
    down: bool
    first: bool
    train: bool

    @nn.compact
    def __call__(self, h):
        def conv(c, k):
            return lambda x: nn.SpectralNorm(nn.Conv(c, (k, k)))(x, update_stats=self.train)

        pool = (lambda x: nn.avg_pool(x, (2, 2), (2, 2))) if self.down else (lambda x: x)
        x = h if self.first else nn.relu(h)
        x = conv(self.channels, 3)(x)
        x = conv(self.channels, 3)(nn.relu(x))
        x = pool(x)
        if self.first:
            shortcut = conv(self.channels, 1)(pool(h))
        elif self.down or h.shape[-1] != self.channels:
            shortcut = pool(conv(self.channels, 1)(h))
        else:
            shortcut = h
        return x + shortcut


class ResNetDiscriminator(nn.Module):
    """The adversarial logit of images x of classes y."""

    num_classes: int
    width: int = 32

    @nn.compact
    def __call__(self, x, y, train: bool = True):
        n = _num_upsamplings(x.shape[1])
        channels = _discriminator_channels(self.width, n)
        h = x
        for i, c in enumerate(channels[:-1]):
            h = DownBlock(c, down=True, first=i == 0, train=train)(h)
        h = DownBlock(channels[-1], down=False, first=False, train=train)(h)
        features = jnp.sum(nn.relu(h), axis=(1, 2))
        out = nn.SpectralNorm(nn.Dense(1))(features, update_stats=train)[:, 0]
        if self.num_classes:
            embed = nn.SpectralNorm(nn.Embed(self.num_classes, features.shape[-1]))
            out = out + jnp.sum(embed(y, update_stats=train) * features, -1)
        return out


class Classifier(nn.Module):
    """Class logits of images in [-1, 1]: a ConvNet (models.encoders) and a Dense layer."""

    num_classes: int
    width: int = 32
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, train: bool = True):
        w = self.width
        features = ConvNet(widths=(w, 2 * w, 4 * w, 4 * w), axis_name=self.axis_name)(x, train)
        return nn.Dense(self.num_classes)(features)


def _module(hparams: dict, axis_name: str | None = None) -> ResNetGenerator:
    return ResNetGenerator(z_dim=hparams["z_dim"], num_classes=hparams["num_classes"],
                           resolution=hparams["resolution"], width=hparams["width"],
                           axis_name=axis_name)


def init_params(hparams: dict, key: jax.Array) -> dict:
    """Random generator variables (params and BatchNorm statistics) for `hparams`."""
    z = jnp.zeros((1, hparams["z_dim"]))
    return jax.jit(_module(hparams).init)(key, z, jnp.zeros((1,), jnp.int32))


@register("resnet")
def build(hparams: dict) -> Generator:
    """hparams: z_dim, num_classes, resolution, width. Anchors come truncated from the
    latent sampler, so `truncation` scales nothing here."""
    module = _module(hparams)

    def apply(params, z, y, truncation: float = 1.0):
        del truncation
        return module.apply(params, z, y, train=False)

    return Generator(family="resnet", hparams=dict(hparams), params=None, apply=apply,
                     z_dim=hparams["z_dim"], num_classes=hparams["num_classes"],
                     resolution=hparams["resolution"],
                     init=lambda key: init_params(hparams, key))
