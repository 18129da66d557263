"""BigGAN-deep (Brock, Donahue & Simonyan, ICLR 2019) as a frozen Flax generator.

The architecture is the one of the published 128/256/512 px checkpoints as the
`pytorch-pretrained-biggan` package lays them out (its `config.json`, see
`BigGANConfig`), so that converted weights give the same images as that package:

    class vector (one-hot) --embeddings--> e;  cond = [z, e]
    cond --gen_z--> 4x4x(16 ch) --> GenBlock x L (self-attention before block
    `attention_layer_position`) --> BN --> ReLU --> 3x3 conv --> first 3 channels --> tanh

Every GenBlock is a bottleneck residual block whose four BatchNorms are
*conditional*: gain 1 + scale(cond) and bias offset(cond), normalising with
statistics that were measured once per truncation value on a grid of `n_stats`
values in [0, 1] ("standing statistics"); a truncation between grid points
interpolates between two of them, exactly as the reference does (including its
weighting, see `stats_interpolation`).

Differences from the reference that do not change the images:
- NHWC layout; convolution kernels HWIO, dense kernels (in, out).
- Spectral normalisation is folded into plain weights at conversion
  (W / uᵀWv with the stored u, v, which is what the reference computes in eval
  mode), so no power iteration or u/v vectors remain.
- `conv_to_rgb` keeps only the 3 output channels the reference keeps (it computes
  `channel_width` channels and drops all but 3), a fifth of the model's FLOPs at 128 px.
- `apply` takes integer class ids (B,) and one-hot encodes them itself; a float
  class vector (B, num_classes) (e.g. a mix of classes) is used as given.

Latents should be drawn as the reference's `truncated_noise_sample` does:
truncation * N(0, 1) truncated to [-2, 2] (as data/views.py draws anchors), with
the same truncation passed to `apply`, which only selects the BatchNorm statistics.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.generators import Generator, register

FAMILY = "biggan_deep"

# The published configurations (the reference's convert_tf_to_pytorch.BigGAN{128,256,512}).
_LAYERS_128 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1),
)
_LAYERS_256 = (
    (False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8), (False, 8, 8),
    (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
    (False, 2, 2), (True, 2, 1),
)
_LAYERS_512 = _LAYERS_256 + ((False, 1, 1), (True, 1, 1))


@dataclasses.dataclass(frozen=True)
class BigGANConfig:
    """The architecture, with the fields and defaults of the reference's `config.json`.

    `layers` lists (upsample?, in, out) channel multipliers of `channel_width` per
    GenBlock. `class_embed_dim` is stored but, as in the reference, the class
    embedding has `z_dim` features. `eps` is the BatchNorm epsilon (and the
    reference's spectral-norm epsilon, which plays no role at inference).
    """

    output_dim: int = 128
    z_dim: int = 128
    class_embed_dim: int = 128
    channel_width: int = 128
    num_classes: int = 1000
    layers: tuple[tuple[bool, int, int], ...] = _LAYERS_128
    attention_layer_position: int = 8
    eps: float = 1e-4
    n_stats: int = 51

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BigGANConfig:
        """Parses a `config.json` dict; unknown keys and inconsistent values raise ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown BigGAN config keys {unknown}; known: {sorted(fields)}")
        kwargs = dict(d)
        if "layers" in kwargs:
            layers = []
            for i, layer in enumerate(kwargs["layers"]):
                if len(layer) != 3:
                    raise ValueError(
                        f"config 'layers'[{i}] = {layer!r}: expected [upsample, in, out]")
                up, cin, cout = layer
                layers.append((bool(up), int(cin), int(cout)))
            kwargs["layers"] = tuple(layers)
        config = cls(**kwargs)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """The JSON-able dict (the reference's `config.json` format)."""
        d = dataclasses.asdict(self)
        d["layers"] = [list(layer) for layer in self.layers]
        return d

    def validate(self) -> None:
        """Raises ValueError naming the first field that cannot describe a BigGAN-deep."""
        for name in ("output_dim", "z_dim", "channel_width", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"config {name!r} must be a positive integer, got {value!r}")
        if not isinstance(self.n_stats, int) or self.n_stats < 2:
            raise ValueError(f"config 'n_stats' must be an integer >= 2, got {self.n_stats!r}")
        if not self.layers:
            raise ValueError("config 'layers' is empty")
        if not self.eps > 0:
            raise ValueError(f"config 'eps' must be positive, got {self.eps!r}")
        if self.layers[0][1] != 16:
            # gen_z produces 16 * channel_width channels.
            raise ValueError(
                f"config 'layers'[0] must start from 16 channel multiples, got {self.layers[0]}")
        for i, (_, cin, cout) in enumerate(self.layers):
            if i > 0 and cin != self.layers[i - 1][2]:
                raise ValueError(
                    f"config 'layers'[{i}] takes {cin} channel multiples but layer {i - 1} "
                    f"gives {self.layers[i - 1][2]}")
            if cin * self.channel_width % 4 or cout <= 0:
                raise ValueError(f"config 'layers'[{i}] = {self.layers[i]} has bad channels")
            # The residual drops the second half of the channels when they change.
            if cin != cout and 2 * cout != cin:
                raise ValueError(
                    f"config 'layers'[{i}] = {self.layers[i]}: a block may only keep or "
                    "halve its channels")
        if self.layers[-1][2] != 1:
            # The final BatchNorm and conv_to_rgb have channel_width inputs.
            raise ValueError(f"config 'layers' must end at 1 channel multiple, got "
                             f"{self.layers[-1]}")
        if self.attention_layer_position < len(self.layers):
            channels = self.channel_width * self.layers[self.attention_layer_position][1]
            if channels % 8:
                raise ValueError(
                    f"config 'attention_layer_position' {self.attention_layer_position}: "
                    f"attention needs channels divisible by 8, got {channels}")
        resolution = 4 * 2 ** sum(up for up, _, _ in self.layers)
        if resolution != self.output_dim:
            raise ValueError(
                f"config 'output_dim' is {self.output_dim} but 'layers' upsample 4 px to "
                f"{resolution} px")


PUBLISHED_CONFIGS: dict[int, BigGANConfig] = {
    128: BigGANConfig(output_dim=128, layers=_LAYERS_128),
    256: BigGANConfig(output_dim=256, layers=_LAYERS_256),
    512: BigGANConfig(output_dim=512, layers=_LAYERS_512),
}


# ---------------------------------------------------------------------------- modules


def _upsample(x: jax.Array) -> jax.Array:
    """2x nearest-neighbour upsampling of NHWC."""
    b, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (b, h, 2, w, 2, c))
    return x.reshape(b, 2 * h, 2 * w, c)


def _maxpool2(x: jax.Array) -> jax.Array:
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def _interpolate_stats(table: jax.Array, index: jax.Array, weight: jax.Array) -> jax.Array:
    """weight[0] * table[index[0]] + weight[1] * table[index[1]]."""
    return weight[0] * table[index[0]] + weight[1] * table[index[1]]


class ConditionalBatchNorm(nn.Module):
    """BatchNorm with standing statistics per truncation and a class/z-conditional affine."""

    features: int
    n_stats: int
    eps: float

    @nn.compact
    def __call__(self, x, cond, stats_index, stats_weight):
        means = self.variable("batch_stats", "running_means", jnp.zeros,
                              (self.n_stats, self.features))
        variances = self.variable("batch_stats", "running_vars", jnp.ones,
                                  (self.n_stats, self.features))
        mean = _interpolate_stats(means.value, stats_index, stats_weight)
        var = _interpolate_stats(variances.value, stats_index, stats_weight)
        gain = 1.0 + nn.Dense(self.features, use_bias=False, name="scale")(cond)
        bias = nn.Dense(self.features, use_bias=False, name="offset")(cond)
        gain = gain * jax.lax.rsqrt(var + self.eps)
        # One multiply-add per element: (x - mean) * gain + bias.
        shift = bias - mean * gain
        return x * gain[:, None, None, :] + shift[:, None, None, :]


class GenBlock(nn.Module):
    """The BigGAN-deep bottleneck residual block (1x1, 3x3, 3x3, 1x1 convolutions)."""

    in_channels: int
    out_channels: int
    upsample: bool
    n_stats: int
    eps: float

    @nn.compact
    def __call__(self, x, cond, stats_index, stats_weight):
        middle = self.in_channels // 4

        def bn(name, features):
            return ConditionalBatchNorm(features, self.n_stats, self.eps, name=name)

        h = nn.relu(bn("bn_0", self.in_channels)(x, cond, stats_index, stats_weight))
        h = nn.Conv(middle, (1, 1), name="conv_0")(h)
        h = nn.relu(bn("bn_1", middle)(h, cond, stats_index, stats_weight))
        if self.upsample:
            h = _upsample(h)
        h = nn.Conv(middle, (3, 3), padding=((1, 1), (1, 1)), name="conv_1")(h)
        h = nn.relu(bn("bn_2", middle)(h, cond, stats_index, stats_weight))
        h = nn.Conv(middle, (3, 3), padding=((1, 1), (1, 1)), name="conv_2")(h)
        h = nn.relu(bn("bn_3", middle)(h, cond, stats_index, stats_weight))
        h = nn.Conv(self.out_channels, (1, 1), name="conv_3")(h)

        if self.in_channels != self.out_channels:
            x = x[..., : self.in_channels // 2]
        if self.upsample:
            x = _upsample(x)
        return h + x


class SelfAttention(nn.Module):
    """SAGAN self-attention with 2x2 max-pooled keys and values, added with a learned gain."""

    channels: int

    @nn.compact
    def __call__(self, x):
        b, h, w, c = x.shape

        def conv(features, name):
            return nn.Conv(features, (1, 1), use_bias=False, name=name)

        theta = conv(c // 8, "theta")(x).reshape(b, h * w, c // 8)
        phi = _maxpool2(conv(c // 8, "phi")(x)).reshape(b, h * w // 4, c // 8)
        g = _maxpool2(conv(c // 2, "g")(x)).reshape(b, h * w // 4, c // 2)
        attn = jax.nn.softmax(jnp.einsum("bqc,bkc->bqk", theta, phi), axis=-1)
        out = jnp.einsum("bqk,bkc->bqc", attn, g).reshape(b, h, w, c // 2)
        out = conv(c, "o_conv")(out)
        gamma = self.param("gamma", nn.initializers.zeros, (1,))
        return x + gamma * out


class BigGANDeep(nn.Module):
    """The generator: (z, class vector, BN statistics selector) -> NHWC images in [-1, 1]."""

    config: BigGANConfig

    @nn.compact
    def __call__(self, z, class_vector, stats_index, stats_weight):
        cfg = self.config
        ch = cfg.channel_width
        embed = nn.Dense(cfg.z_dim, use_bias=False, name="embeddings")(class_vector)
        cond = jnp.concatenate([z, embed], axis=-1)
        # The reference's gen_z output is laid out (4, 4, 16 ch), i.e. already NHWC.
        h = nn.Dense(4 * 4 * 16 * ch, name="gen_z")(cond).reshape(-1, 4, 4, 16 * ch)
        for i, (up, cin, cout) in enumerate(cfg.layers):
            if i == cfg.attention_layer_position:
                h = SelfAttention(ch * cin, name="attention")(h)
            h = GenBlock(ch * cin, ch * cout, up, cfg.n_stats, cfg.eps, name=f"block_{i}")(
                h, cond, stats_index, stats_weight)

        means = self.variable("batch_stats", "bn_running_means", jnp.zeros, (cfg.n_stats, ch))
        variances = self.variable("batch_stats", "bn_running_vars", jnp.ones, (cfg.n_stats, ch))
        scale = self.param("bn_scale", nn.initializers.ones, (ch,))
        bias = self.param("bn_bias", nn.initializers.zeros, (ch,))
        mean = _interpolate_stats(means.value, stats_index, stats_weight)
        var = _interpolate_stats(variances.value, stats_index, stats_weight)
        gain = scale * jax.lax.rsqrt(var + cfg.eps)
        h = nn.relu(h * gain + (bias - mean * gain))
        h = nn.Conv(3, (3, 3), padding=((1, 1), (1, 1)), name="conv_to_rgb")(h)
        return jnp.tanh(h)


# ------------------------------------------------------------------- truncation, apply


def stats_interpolation(truncation: Any, n_stats: int) -> tuple[jax.Array, jax.Array]:
    """(indices (2,), weights (2,)) selecting the standing BN statistics for `truncation`.

    The reference computes `coef, i = math.modf(truncation / (1 / (n_stats - 1)))` in
    float64 and uses `stats[i] * coef + stats[i + 1] * (1 - coef)` when coef != 0
    (note: the weight `coef` goes to the *lower* grid point), else `stats[i]`. A
    concrete truncation (a Python or NumPy number) reproduces that on the host,
    bit for bit. A traced truncation (e.g. an argument of a jitted function) is
    computed in float32 instead, with quotients within 1e-4 of a grid point
    snapped to it, since float32 would otherwise turn 0.3 / 0.02 into 15.000001.
    """
    if not isinstance(truncation, jax.core.Tracer):
        t = float(truncation)
        if not 0.0 < t <= 1.0:
            raise ValueError(f"truncation must be in (0, 1], got {t}")
        coef, start = math.modf(t / (1.0 / (n_stats - 1)))
        start = int(start)
        if coef != 0.0:
            index, weight = (start, start + 1), (coef, 1.0 - coef)
        else:
            index, weight = (start, start), (1.0, 0.0)
        return jnp.asarray(index, jnp.int32), jnp.asarray(weight, jnp.float32)
    q = jnp.asarray(truncation, jnp.float32) * (n_stats - 1)
    q = jnp.where(jnp.abs(q - jnp.round(q)) < 1e-4, jnp.round(q), q)
    start = jnp.clip(jnp.floor(q), 0, n_stats - 1)
    coef = q - start
    on_grid = coef == 0
    index = jnp.stack([start, jnp.where(on_grid, start, start + 1)]).astype(jnp.int32)
    index = jnp.minimum(index, n_stats - 1)
    weight = jnp.stack([jnp.where(on_grid, 1.0, coef), jnp.where(on_grid, 0.0, 1.0 - coef)])
    return index, weight


def class_vector(y: jax.Array, num_classes: int) -> jax.Array:
    """Integer ids (B,) -> one-hot float32 (B, num_classes); (B, num_classes) passes through."""
    concrete = not isinstance(y, jax.core.Tracer)
    y = np.asarray(y) if concrete else y
    if y.ndim == 1 and jnp.issubdtype(y.dtype, jnp.integer):
        if concrete:
            # one_hot would silently give an all-zero vector for an id out of range.
            bad = y[(y < 0) | (y >= num_classes)]
            if bad.size:
                raise ValueError(f"class ids must be in [0, {num_classes}), got {bad[:4]}")
        return jax.nn.one_hot(y, num_classes, dtype=jnp.float32)
    if y.ndim == 2 and y.shape[-1] == num_classes:
        return y.astype(jnp.float32)
    raise ValueError(
        f"y must be integer class ids (B,) or class vectors (B, {num_classes}), "
        f"got {y.dtype}{tuple(y.shape)}")


def make_apply(config: BigGANConfig):
    """`apply(params, z, y, truncation=1.0)` for `config`, jitted once per input shape.

    The truncation enters the compiled function as data (two indices and weights),
    so changing it does not recompile.
    """
    module = BigGANDeep(config)

    @jax.jit
    def forward(variables, z, class_vec, stats_index, stats_weight):
        return module.apply(variables, z.astype(jnp.float32), class_vec, stats_index,
                            stats_weight)

    def apply(params: Any, z: jax.Array, y: jax.Array, truncation: Any = 1.0) -> jax.Array:
        """NHWC float32 images in [-1, 1] for latents z (B, z_dim) and classes y."""
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[-1] != config.z_dim:
            raise ValueError(f"z must have shape (B, {config.z_dim}), got {tuple(z.shape)}")
        stats_index, stats_weight = stats_interpolation(truncation, config.n_stats)
        return forward(params, z, class_vector(y, config.num_classes), stats_index,
                       stats_weight)

    return apply


_ONES = ("running_vars", "bn_running_vars", "bn_scale")  # variables that start at one


def init_variables(config: BigGANConfig, rng: jax.Array | None = None,
                   abstract: bool = False) -> Any:
    """Random variables (or their shapes, `abstract=True`) for `config`: kernels drawn from
    N(0, 1/fan_in) (flax's default scale), BatchNorm scales and variances one, biases, means
    and the attention gain zero, as the layers start. Drawn on the shapes of flax's `init`
    (in one draw: this is traced under jit too), not by running `init`, which compiles the
    whole network (12 s on 2 CPU cores for BigGAN-deep-128 at width 4; this takes ~5 s)
    only to draw numbers that a random generator of a smoke run or a benchmark does not
    depend on."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    args = (jnp.zeros((1, config.z_dim)), jnp.zeros((1, config.num_classes)),
            jnp.zeros((2,), jnp.int32), jnp.asarray([1.0, 0.0]))
    shapes = jax.eval_shape(functools.partial(BigGANDeep(config).init, rng), *args)
    if abstract:
        return shapes
    sizes = [s.size for p, s in jax.tree_util.tree_leaves_with_path(shapes) if p[-1].key == "kernel"]
    noise = jax.random.normal(rng, (sum(sizes),))  # one draw, cut into the kernels in leaf order
    pieces = iter(jnp.split(noise, np.cumsum(sizes)[:-1]))

    def leaf(path, s):
        name = path[-1].key
        if name == "kernel":
            return (next(pieces).reshape(s.shape) / np.sqrt(np.prod(s.shape[:-1]))).astype(s.dtype)
        return (jnp.ones if name in _ONES else jnp.zeros)(s.shape, s.dtype)

    return jax.tree_util.tree_map_with_path(leaf, shapes)


def small_hparams(z_dim: int, num_classes: int, resolution: int, width: int) -> dict:
    """A BigGAN-deep of the published layout for `resolution` with a small channel width
    (random generators of smoke runs)."""
    layers = {128: _LAYERS_128, 256: _LAYERS_256, 512: _LAYERS_512}.get(resolution)
    if layers is None:
        raise ValueError(f"BigGAN-deep resolution must be 128, 256 or 512, got {resolution}")
    return BigGANConfig(output_dim=resolution, z_dim=z_dim, class_embed_dim=z_dim,
                        channel_width=width, num_classes=num_classes, layers=layers).to_dict()


@register(FAMILY)
def build(hparams: dict) -> Generator:
    """The BigGAN-deep generator for `hparams` (a reference `config.json` dict), without params."""
    config = BigGANConfig.from_dict(hparams)
    return Generator(
        family=FAMILY,
        hparams=config.to_dict(),
        params=None,
        apply=make_apply(config),
        z_dim=config.z_dim,
        num_classes=config.num_classes,
        resolution=config.output_dim,
        init=lambda key: init_variables(config, key),
    )


# --------------------------------------------------------------------------- conversion


class CheckpointMismatchError(ValueError):
    """A state dict that does not fit the BigGAN-deep architecture of a config."""


def _reference_shapes(config: BigGANConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor of the reference model's state dict for `config`, with its shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    ch, cond = config.channel_width, 2 * config.z_dim

    def sn(prefix, shape):
        out, fan_in = shape[0], int(np.prod(shape[1:]))
        shapes[prefix + ".weight_orig"] = shape
        shapes[prefix + ".weight_u"] = (out,)
        shapes[prefix + ".weight_v"] = (fan_in,)

    def conv(prefix, cin, cout, k, bias=True):
        sn(prefix, (cout, cin, k, k))
        if bias:
            shapes[prefix + ".bias"] = (cout,)

    def bn(prefix, features):
        shapes[prefix + ".running_means"] = (config.n_stats, features)
        shapes[prefix + ".running_vars"] = (config.n_stats, features)
        sn(prefix + ".scale", (features, cond))
        sn(prefix + ".offset", (features, cond))

    shapes["embeddings.weight"] = (config.z_dim, config.num_classes)
    sn("generator.gen_z", (4 * 4 * 16 * ch, cond))
    shapes["generator.gen_z.bias"] = (4 * 4 * 16 * ch,)
    for prefix, kind, (_, cin, cout) in _reference_layers(config):
        cin, cout = ch * cin, ch * cout
        if kind == "attention":
            shapes[prefix + ".gamma"] = (1,)
            conv(prefix + ".snconv1x1_theta", cin, cin // 8, 1, bias=False)
            conv(prefix + ".snconv1x1_phi", cin, cin // 8, 1, bias=False)
            conv(prefix + ".snconv1x1_g", cin, cin // 2, 1, bias=False)
            conv(prefix + ".snconv1x1_o_conv", cin // 2, cin, 1, bias=False)
            continue
        middle = cin // 4
        bn(prefix + ".bn_0", cin)
        conv(prefix + ".conv_0", cin, middle, 1)
        bn(prefix + ".bn_1", middle)
        conv(prefix + ".conv_1", middle, middle, 3)
        bn(prefix + ".bn_2", middle)
        conv(prefix + ".conv_2", middle, middle, 3)
        bn(prefix + ".bn_3", middle)
        conv(prefix + ".conv_3", middle, cout, 1)
    for name in ("weight", "bias"):
        shapes["generator.bn." + name] = (ch,)
    shapes["generator.bn.running_means"] = (config.n_stats, ch)
    shapes["generator.bn.running_vars"] = (config.n_stats, ch)
    conv("generator.conv_to_rgb", ch, ch, 3)
    return shapes


def _reference_layers(config: BigGANConfig):
    """(state-dict prefix, "block" or "attention", layer spec) in the reference's order."""
    j = 0
    for i, layer in enumerate(config.layers):
        if i == config.attention_layer_position:
            yield f"generator.layers.{j}", "attention", layer
            j += 1
        yield f"generator.layers.{j}", "block", layer
        j += 1


def _examples(keys: Sequence[str], n: int = 4) -> str:
    keys = sorted(keys)
    more = f", ... ({len(keys) - n} more)" if len(keys) > n else ""
    return ", ".join(keys[:n]) + more


def check_state_dict(state_dict: Mapping[str, Any], config: BigGANConfig) -> None:
    """Raises CheckpointMismatchError unless `state_dict` is the reference model of `config`.

    Missing and unexpected keys (another architecture, or a config with other
    layers) are listed; a shape that differs (a config with other widths) names
    the tensor and both shapes.
    """
    expected = _reference_shapes(config)
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys ({_examples(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys ({_examples(unexpected)})")
        raise CheckpointMismatchError(
            f"the checkpoint does not match the config (a BigGAN-deep with "
            f"{len(config.layers)} blocks, attention before block "
            f"{config.attention_layer_position}): "
            + "; ".join(parts))
    wrong = [(k, tuple(state_dict[k].shape), shape) for k, shape in expected.items()
             if tuple(state_dict[k].shape) != shape]
    if wrong:
        k, got, want = wrong[0]
        more = f" (and {len(wrong) - 1} more tensors)" if len(wrong) > 1 else ""
        raise CheckpointMismatchError(
            f"the config does not match the checkpoint: {k} has shape {got} in the checkpoint "
            f"but {want} from the config (channel_width={config.channel_width}, "
            f"z_dim={config.z_dim}, num_classes={config.num_classes}, "
            f"n_stats={config.n_stats}){more}")


def _fold_spectral_norm(state_dict: Mapping[str, np.ndarray], prefix: str) -> np.ndarray:
    """weight_orig / (uᵀ W v): the weight torch's spectral_norm uses in eval mode."""
    weight = np.asarray(state_dict[prefix + ".weight_orig"], np.float32)
    u = np.asarray(state_dict[prefix + ".weight_u"], np.float64)
    v = np.asarray(state_dict[prefix + ".weight_v"], np.float64)
    sigma = float(u @ (weight.reshape(weight.shape[0], -1).astype(np.float64) @ v))
    # The reference divides by sigma whatever its sign; only 0, inf and nan cannot work.
    if not np.isfinite(sigma) or sigma == 0:
        raise CheckpointMismatchError(
            f"{prefix}: the spectral norm uᵀWv from the stored weight_u and weight_v is "
            f"{sigma}; the checkpoint is corrupt")
    return weight / np.float32(sigma)


def params_from_state_dict(state_dict: Mapping[str, Any], config: BigGANConfig) -> dict:
    """Flax variables {"params", "batch_stats"} from the reference model's state dict.

    `state_dict` maps the reference's keys to arrays (NumPy or anything
    `np.asarray` takes); it is checked first with `check_state_dict`.
    """
    check_state_dict(state_dict, config)
    sd = {k: np.asarray(v, np.float32) for k, v in state_dict.items()}

    def dense(prefix, bias=True):
        out = {"kernel": _fold_spectral_norm(sd, prefix).T}
        if bias:
            out["bias"] = sd[prefix + ".bias"]
        return out

    def conv(prefix, bias=True):
        out = {"kernel": _fold_spectral_norm(sd, prefix).transpose(2, 3, 1, 0)}  # OIHW -> HWIO
        if bias:
            out["bias"] = sd[prefix + ".bias"]
        return out

    params: dict[str, Any] = {
        "embeddings": {"kernel": sd["embeddings.weight"].T},
        "gen_z": dense("generator.gen_z"),
    }
    stats: dict[str, Any] = {}
    block = 0
    for prefix, kind, _ in _reference_layers(config):
        if kind == "attention":
            params["attention"] = {
                "theta": conv(prefix + ".snconv1x1_theta", bias=False),
                "phi": conv(prefix + ".snconv1x1_phi", bias=False),
                "g": conv(prefix + ".snconv1x1_g", bias=False),
                "o_conv": conv(prefix + ".snconv1x1_o_conv", bias=False),
                "gamma": sd[prefix + ".gamma"],
            }
            continue
        p, s = {}, {}
        for k in range(4):
            bn = f"{prefix}.bn_{k}"
            p[f"bn_{k}"] = {"scale": dense(bn + ".scale", bias=False),
                            "offset": dense(bn + ".offset", bias=False)}
            s[f"bn_{k}"] = {"running_means": sd[bn + ".running_means"],
                            "running_vars": sd[bn + ".running_vars"]}
            p[f"conv_{k}"] = conv(f"{prefix}.conv_{k}")
        params[f"block_{block}"], stats[f"block_{block}"] = p, s
        block += 1
    params["bn_scale"] = sd["generator.bn.weight"]
    params["bn_bias"] = sd["generator.bn.bias"]
    stats["bn_running_means"] = sd["generator.bn.running_means"]
    stats["bn_running_vars"] = sd["generator.bn.running_vars"]
    rgb = conv("generator.conv_to_rgb")
    # The reference keeps only channels :3 of this convolution.
    params["conv_to_rgb"] = {"kernel": rgb["kernel"][..., :3], "bias": rgb["bias"][:3]}
    variables = {"params": params, "batch_stats": stats}

    # The mapping above and the module must agree leaf for leaf.
    abstract = init_variables(config, abstract=True)
    got = jax.tree_util.tree_map(lambda x: tuple(x.shape), variables)
    want = jax.tree_util.tree_map(lambda x: tuple(x.shape), abstract)
    if got != want:
        raise AssertionError(f"BigGAN conversion does not produce the module's variables: "
                             f"{got} != {want}")
    return jax.tree_util.tree_map(np.ascontiguousarray, variables)
