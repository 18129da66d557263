"""Encoders f and projection heads g, as Flax Linen modules.

BatchNorm takes `axis_name`: under data parallelism (shard_map or pmap over the
`data` axis) its batch statistics are averaged over all devices, so the global
batch is normalised as one batch (cross-replica BatchNorm, as SimCLR does).

`dtype` is the compute dtype (config key train.dtype): with bfloat16, convolutions,
matmuls and activations run in bfloat16, while parameters stay float32 (Flax's
param_dtype), BatchNorm's statistics are reduced in float32, and the features and
projections that leave the modules are float32, so the loss is computed in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from models import conv as conv_lib

ENCODERS = ("convnet", "resnet18", "resnet50", "ff_convnet")
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}  # config key train.dtype
# Every encoder convolution: Flax's, with models/conv.py's backward for strided ones.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_lib.conv_general_dilated)


def batch_norm(train: bool, axis_name: str | None, dtype: Any = jnp.float32) -> functools.partial:
    """BatchNorm over the global batch when training (statistics averaged over `axis_name`).

    The variance is computed as E[(x − mean)²], not E[x²] − mean², which loses
    precision to cancellation in nearly constant channels.
    """
    return functools.partial(nn.BatchNorm, use_running_average=not train, momentum=0.9,
                             axis_name=axis_name if train else None, use_fast_variance=False,
                             dtype=dtype)


POOLS = ("mean", "mean_max")  # config key model.pool


class ConvNet(nn.Module):
    """A small all-convolutional net (3×3 conv, BN, ReLU; stride 2 after the first) for
    smoke tests and CPU-sized runs. Features: the global mean of the last stage, or with
    `pool="mean_max"` its global mean and max side by side (twice as many features; the
    max keeps a small object's response that the mean spreads over the whole image)."""

    widths: Sequence[int] = (16, 32, 64, 128)
    axis_name: str | None = None
    dtype: Any = jnp.float32
    pool: str = "mean"

    @nn.compact
    def __call__(self, x, train: bool = True):
        norm = batch_norm(train, self.axis_name, self.dtype)
        x = x.astype(self.dtype)
        for i, width in enumerate(self.widths):
            x = Conv(width, (3, 3), strides=1 if i == 0 else 2, use_bias=False, dtype=self.dtype)(x)
            x = nn.relu(norm()(x))
        x = x.astype(jnp.float32)
        if self.pool == "mean_max":
            return jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.max(x, axis=(1, 2))], -1)
        return jnp.mean(x, axis=(1, 2))


def rms_normalize(h: jax.Array, eps: float = 1e-6) -> jax.Array:
    """Each example's activity vector (all but the batch axis) scaled to a mean square of 1:
    what Forward-Forward passes on, so that a layer's goodness is not visible to the next."""
    axes = tuple(range(1, h.ndim))
    return h * jax.lax.rsqrt(jnp.mean(jnp.square(h), axis=axes, keepdims=True) + eps)


def embed_label(x: jax.Array, label_vector: jax.Array) -> jax.Array:
    """Images (B, H, W, 3) with a label vector (B, C) written into the first C pixels of
    their top row (every channel): Forward-Forward's supervised inputs."""
    c = label_vector.shape[-1]
    return x.at[:, 0, :c, :].set(label_vector[:, :, None].astype(x.dtype))


class FFConvNet(nn.Module):
    """The ConvNet of `ConvNet` without BatchNorm (whose batch statistics would mix positive
    and negative examples), trained layer by layer by Forward-Forward (tasks/forward_forward.py):
    each layer sees the RMS-normalised, stop-gradient output of the one before, so its
    gradient comes from its own goodness only. Features: the spatial mean of every layer's
    normalised activities but the first, concatenated (Hinton 2022). With `label_slots` C > 0
    (negatives with wrong labels), inputs carry a label in their first C pixels; features
    are taken with the neutral label 1/C."""

    widths: Sequence[int] = (16, 32, 64, 128)
    label_slots: int = 0
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True, per_layer: bool = False):
        """Features (B, Σ widths[1:]); with per_layer, each layer's activities instead (the
        input then carries its own label, if any)."""
        del train
        if self.label_slots and not per_layer:
            neutral = jnp.full((x.shape[0], self.label_slots), 1.0 / self.label_slots)
            x = embed_label(x, 2.0 * neutral - 1.0)  # images and labels in [-1, 1]
        h, acts = x.astype(self.dtype), []
        for i, width in enumerate(self.widths):
            if i:
                h = jax.lax.stop_gradient(rms_normalize(h))
            h = nn.relu(Conv(width, (3, 3), strides=1 if i == 0 else 2, dtype=self.dtype)(h))
            acts.append(h)
        if per_layer:
            return acts
        return jnp.concatenate([jnp.mean(rms_normalize(a).astype(jnp.float32), axis=(1, 2))
                                for a in acts[1:]], -1)


class BasicBlock(nn.Module):
    width: int
    strides: int
    norm: functools.partial
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(Conv, use_bias=False, dtype=self.dtype)
        y = conv(self.width, (3, 3), self.strides)(x)
        y = nn.relu(self.norm()(y))
        y = conv(self.width, (3, 3))(y)
        y = self.norm(scale_init=nn.initializers.zeros)(y)
        if x.shape != y.shape:
            x = self.norm()(conv(self.width, (1, 1), self.strides)(x))
        return nn.relu(x + y)


class Bottleneck(nn.Module):
    width: int
    strides: int
    norm: functools.partial
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        conv = functools.partial(Conv, use_bias=False, dtype=self.dtype)
        y = nn.relu(self.norm()(conv(self.width, (1, 1))(x)))
        y = nn.relu(self.norm()(conv(self.width, (3, 3), self.strides)(y)))
        y = self.norm(scale_init=nn.initializers.zeros)(conv(4 * self.width, (1, 1))(y))
        if x.shape != y.shape:
            x = self.norm()(conv(4 * self.width, (1, 1), self.strides)(x))
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet-18/50. `stem="cifar"`: 3×3 conv, no max-pool (for ≤ 64 px); "imagenet": 7×7/2 + pool."""

    stages: Sequence[int]
    block: str = "basic"
    stem: str = "imagenet"
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        norm = batch_norm(train, self.axis_name, self.dtype)
        conv = functools.partial(Conv, use_bias=False, dtype=self.dtype)
        x = x.astype(self.dtype)
        if self.stem == "cifar":
            x = nn.relu(norm()(conv(64, (3, 3))(x)))
        else:
            x = nn.relu(norm()(conv(64, (7, 7), 2, padding=[(3, 3), (3, 3)])(x)))
            x = nn.max_pool(x, (3, 3), (2, 2), padding="SAME")
        block = BasicBlock if self.block == "basic" else Bottleneck
        for i, depth in enumerate(self.stages):
            for j in range(depth):
                x = block(64 * 2 ** i, 2 if (i > 0 and j == 0) else 1, norm, self.dtype)(x)
        return jnp.mean(x.astype(jnp.float32), axis=(1, 2))


class ProjectionHead(nn.Module):
    """MLP g: Dense → BN → ReLU (× layers−1) → Dense → BN; the loss L2-normalises its output.

    The last layer is SimCLR's (v2 code): a Dense without bias, then BatchNorm with a scale
    and no offset, so every output dimension has zero mean over the batch. With a plain
    Dense + bias there, the projections can collapse onto the bias direction (all cosines →
    1, the uniform loss log(2B − 1)), which SupCon did within ~15 steps on the embedded
    default; with the BN it learns, and NT-Xent's probe accuracy rose too (README, quickstart).
    """

    hidden: int
    out: int
    layers: int = 2
    axis_name: str | None = None
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = True):
        norm = batch_norm(train, self.axis_name, self.dtype)
        for _ in range(self.layers - 1):
            x = nn.Dense(self.hidden, dtype=self.dtype)(x)
            x = nn.relu(norm()(x))
        x = nn.Dense(self.out, use_bias=False, dtype=self.dtype)(x)
        return norm(use_bias=False)(x).astype(jnp.float32)


class ContrastiveModel(nn.Module):
    """Encoder f, projection head g, an online linear classifier on stop-gradient f, and
    (loss.name=clip_latent) a latent tower: an MLP on the generator's input, with CLIP's
    learnable logit scale `logit_scale` (log of 1/τ, initialised at log(1/0.07))."""

    encoder: nn.Module
    head: ProjectionHead
    num_classes: int
    latent_tower: nn.Module | None = None
    init_temperature: float = 0.07

    def setup(self):
        if self.num_classes:
            self.classifier = nn.Dense(self.num_classes)
        if self.latent_tower is not None:
            self.logit_scale = self.param(
                "logit_scale", lambda _: jnp.log(jnp.float32(1.0 / self.init_temperature)))

    def __call__(self, x, latents=None, train: bool = True):
        """(features, projections, classifier logits, latent projections or None)."""
        features = self.encoder(x, train=train)
        projections = self.head(features, train=train)
        logits = (self.classifier(jax.lax.stop_gradient(features)) if self.num_classes
                  else jnp.zeros((x.shape[0], 0)))
        latent_projections = None
        if self.latent_tower is not None:
            latent_projections = self.latent_tower(latents, train=train)
        return features, projections, logits, latent_projections


def build_encoder(name: str, *, image_size: int, width: int = 32,
                  axis_name: str | None = None, dtype: str = "float32",
                  label_slots: int = 0, pool: str = "mean") -> nn.Module:
    """The encoder named by config key model.encoder, computing in `dtype` (train.dtype);
    the stem follows the image size. `label_slots`: ff_convnet's label pixels; `pool`
    (model.pool): the convnet's global pooling."""
    stem = "cifar" if image_size <= 64 else "imagenet"
    compute = DTYPES[dtype]
    if pool != "mean" and name != "convnet":
        raise ValueError(f"pool={pool!r} is the convnet's; {name} pools by the mean")
    if name == "convnet":
        return ConvNet(widths=(width, 2 * width, 4 * width, 8 * width), axis_name=axis_name,
                       dtype=compute, pool=pool)
    if name == "ff_convnet":
        return FFConvNet(widths=(width, 2 * width, 4 * width, 8 * width), label_slots=label_slots,
                         dtype=compute)
    if name == "resnet18":
        return ResNet((2, 2, 2, 2), "basic", stem, axis_name, compute)
    if name == "resnet50":
        return ResNet((3, 4, 6, 3), "bottleneck", stem, axis_name, compute)
    raise ValueError(f"unknown model.encoder={name!r}; choose from {ENCODERS}")
