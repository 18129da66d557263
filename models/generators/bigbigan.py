"""BigBiGAN's generator (Donahue & Simonyan, NeurIPS 2019) as a frozen Flax generator.

The generator of the TF-Hub modules `deepmind/bigbigan-resnet50/1` and
`deepmind/bigbigan-revnet50x4/1` (the same architecture; the modules differ in
their encoders): the BigGAN (not -deep) 128 px generator with hierarchical
latents and no classes:

    z (120) split into 6 chunks of 20;  e = a learned 128-vector (the embedding of
    the module's single dummy class);  cond_i = [z_{i+1}, e]
    z_0 --GenZ linear--> 4x4x(16 ch) --> GBlock x 5 (self-attention before the last,
    at 64x64) --> BN --> ReLU --> 3x3 conv --> tanh          (ch = 96)

Each GBlock is BigGAN's residual up-block: CBN, ReLU, 2x nearest upsampling,
3x3 conv, CBN, ReLU, 3x3 conv, plus a 1x1-conv shortcut of the upsampled input;
its conditional BatchNorms ("BatchNorm", "BatchNorm_1" in the module) have gain
1 + W_s cond and bias W_o cond and normalise with the accumulated statistics
stored in the module (BigBiGAN has no truncation: one set of statistics).

Differences from the module that do not change the images:
- NHWC layout; convolution kernels HWIO and dense kernels (in, out), as TF has them.
- Spectral normalisation is folded into plain weights at conversion: W / σ with
  σ from one power iteration started at the stored u0, which is what the module
  computes at inference; the exponential moving averages of the weights
  (`…/ema_0.9999`), which the module samples with, are the weights converted.
- The shortcut's 1x1 conv runs before the upsampling (they commute: 4x cheaper).

`apply(params, z, y=None, truncation=1.0)` ignores y (unconditional) and
truncation (there are no per-truncation statistics; draw truncated latents
instead).

The TF-Hub variable names and shapes (`expected_variables`) come from public
ports of these modules (BigGANsAreWatching's bigbigan2biggan renaming onto the
TF-Hub BigGAN-128 names, which BigGAN-PyTorch's TFHub converter reads); genviews
tests them on synthetic checkpoints with those names, not on the downloaded modules.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Collection, Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from models.generators import Generator, register
from models.generators.biggan import SelfAttention, _upsample

FAMILY = "bigbigan"

# Channel multipliers of channel_width from the 4x4 input to the last block's
# output at 128 px (BigGAN's G_arch[128]); each block doubles the resolution.
_CHANNELS_128 = (16, 16, 8, 4, 2, 1)
_ATTENTION_RESOLUTION = 64  # self-attention on the input of the block that makes 128 px


@dataclasses.dataclass(frozen=True)
class BigBiGANConfig:
    """The architecture. The published modules: the defaults.

    `channel_width` and `embed_dim` may be smaller (random generators of smoke runs,
    tests); `z_dim` must split into one chunk for the linear layer and one per block.
    """

    resolution: int = 128
    z_dim: int = 120
    channel_width: int = 96
    embed_dim: int = 128
    eps: float = 1e-4

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BigBiGANConfig:
        """Parses an hparams dict; unknown keys and impossible values raise ValueError."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ValueError(f"unknown BigBiGAN hparams {unknown}; known: {sorted(fields)}")
        config = cls(**d)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def blocks(self) -> list[tuple[int, int]]:
        """(in, out) channels of each GBlock."""
        ch = [m * self.channel_width for m in _CHANNELS_128]
        return list(zip(ch[:-1], ch[1:], strict=True))

    @property
    def attention_index(self) -> int:
        """The block whose input goes through self-attention (its input is 64x64)."""
        return [4 * 2 ** i for i in range(len(self.blocks))].index(_ATTENTION_RESOLUTION)

    @property
    def z_chunk(self) -> int:
        return self.z_dim // (len(self.blocks) + 1)

    def validate(self) -> None:
        """Raises ValueError naming the first field that cannot describe a BigBiGAN generator."""
        if self.resolution != 128:
            raise ValueError(f"BigBiGAN resolution must be 128 (the published modules' only size), "
                             f"got {self.resolution!r}")
        for name in ("z_dim", "channel_width", "embed_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"BigBiGAN {name!r} must be a positive integer, got {value!r}")
        chunks = len(self.blocks) + 1
        if self.z_dim % chunks:
            raise ValueError(f"BigBiGAN 'z_dim' must split into {chunks} equal chunks "
                             f"(the linear layer and {chunks - 1} blocks), got {self.z_dim}")
        if self.channel_width * 2 % 8:
            # Self-attention at 64x64 has 2 * channel_width channels and c // 8 keys.
            raise ValueError(f"BigBiGAN 'channel_width' must be a multiple of 4 "
                             f"(self-attention needs 2 * width divisible by 8), got {self.channel_width}")
        if not self.eps > 0:
            raise ValueError(f"BigBiGAN 'eps' must be positive, got {self.eps!r}")


# ---------------------------------------------------------------------------- modules


class HyperBatchNorm(nn.Module):
    """BatchNorm with stored statistics and a conditional affine: gain 1 + W_s c, bias W_o c."""

    features: int
    eps: float

    @nn.compact
    def __call__(self, x, cond):
        mean = self.variable("batch_stats", "mean", jnp.zeros, (self.features,)).value
        var = self.variable("batch_stats", "var", jnp.ones, (self.features,)).value
        gain = 1.0 + nn.Dense(self.features, use_bias=False, name="scale")(cond)
        bias = nn.Dense(self.features, use_bias=False, name="offset")(cond)
        gain = gain * jax.lax.rsqrt(var + self.eps)
        # One multiply-add per element: (x - mean) * gain + bias.
        return x * gain[:, None, None, :] + (bias - mean * gain)[:, None, None, :]


class GBlock(nn.Module):
    """BigGAN's residual up-block with two conditional BatchNorms and a 1x1 shortcut."""

    in_channels: int
    out_channels: int
    eps: float

    @nn.compact
    def __call__(self, x, cond):
        def conv(kernel, name):
            pad = kernel // 2
            return nn.Conv(self.out_channels, (kernel, kernel), padding=((pad, pad), (pad, pad)),
                           name=name)

        h = nn.relu(HyperBatchNorm(self.in_channels, self.eps, name="bn_0")(x, cond))
        h = conv(3, "conv_0")(_upsample(h))
        h = nn.relu(HyperBatchNorm(self.out_channels, self.eps, name="bn_1")(h, cond))
        h = conv(3, "conv_1")(h)
        return h + _upsample(conv(1, "conv_sc")(x))


class BigBiGANGenerator(nn.Module):
    """z (B, z_dim) -> NHWC images in [-1, 1]."""

    config: BigBiGANConfig

    @nn.compact
    def __call__(self, z):
        cfg = self.config
        blocks = cfg.blocks
        chunks = jnp.split(z, len(blocks) + 1, axis=-1)
        embedding = self.param("embedding", nn.initializers.normal(1.0), (cfg.embed_dim,))
        embedding = jnp.broadcast_to(embedding, (z.shape[0], cfg.embed_dim))
        first = blocks[0][0]
        # The module's GenZ output is laid out (4, 4, channels), i.e. already NHWC.
        h = nn.Dense(4 * 4 * first, name="gen_z")(chunks[0]).reshape(-1, 4, 4, first)
        for i, (cin, cout) in enumerate(blocks):
            if i == cfg.attention_index:
                h = SelfAttention(cin, name="attention")(h)
            cond = jnp.concatenate([chunks[i + 1], embedding], axis=-1)
            h = GBlock(cin, cout, cfg.eps, name=f"block_{i}")(h, cond)

        ch = blocks[-1][1]
        mean = self.variable("batch_stats", "bn_mean", jnp.zeros, (ch,)).value
        var = self.variable("batch_stats", "bn_var", jnp.ones, (ch,)).value
        scale = self.param("bn_scale", nn.initializers.ones, (ch,))
        bias = self.param("bn_bias", nn.initializers.zeros, (ch,))
        gain = scale * jax.lax.rsqrt(var + cfg.eps)
        h = nn.relu(h * gain + (bias - mean * gain))
        h = nn.Conv(3, (3, 3), padding=((1, 1), (1, 1)), name="conv_to_rgb")(h)
        return jnp.tanh(h)


def make_apply(config: BigBiGANConfig):
    """`apply(params, z, y=None, truncation=1.0)` for `config`, jitted once per input shape."""
    module = BigBiGANGenerator(config)
    forward = jax.jit(lambda variables, z: module.apply(variables, z.astype(jnp.float32)))

    def apply(params: Any, z: jax.Array, y: Any = None, truncation: Any = 1.0) -> jax.Array:
        """NHWC float32 images in [-1, 1] for latents z (B, z_dim); y and truncation are unused."""
        del y, truncation  # unconditional; one set of BatchNorm statistics
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[-1] != config.z_dim:
            raise ValueError(f"z must have shape (B, {config.z_dim}), got {tuple(z.shape)}")
        return forward(params, z)

    return apply


def init_variables(config: BigBiGANConfig, rng: jax.Array | None = None,
                   abstract: bool = False) -> Any:
    """Randomly initialised variables (or their shapes, `abstract=True`) for `config`."""
    rng = jax.random.PRNGKey(0) if rng is None else rng
    init = functools.partial(BigBiGANGenerator(config).init, rng)
    z = jnp.zeros((1, config.z_dim))
    return jax.eval_shape(init, z) if abstract else init(z)


def small_hparams(z_dim: int, num_classes: int, resolution: int, width: int) -> dict:
    """A BigBiGAN generator of the published layout with channel width `width`
    (random generators of smoke runs)."""
    if num_classes:
        raise ValueError(f"BigBiGAN is unconditional: num_classes must be 0, got {num_classes}")
    config = BigBiGANConfig(resolution=resolution, z_dim=z_dim, channel_width=width)
    config.validate()
    return config.to_dict()


@register(FAMILY)
def build(hparams: dict) -> Generator:
    """The BigBiGAN generator for `hparams` (BigBiGANConfig fields), without params."""
    config = BigBiGANConfig.from_dict(hparams)
    return Generator(
        family=FAMILY,
        hparams=config.to_dict(),
        params=None,
        apply=make_apply(config),
        z_dim=config.z_dim,
        num_classes=0,
        resolution=config.resolution,
        init=lambda key: init_variables(config, key),
    )


# --------------------------------------------------------------------------- conversion


class CheckpointMismatchError(ValueError):
    """A set of TF variables that does not hold a BigBiGAN generator; the message names one."""


EMA = "/ema_0.9999"  # the moving averages of the weights, which the modules sample with
SCOPE = "GenEncWrapper/Generator/"  # the generator's variable scope in the modules
_GEN_Z = "GenZ/G_linear/"
_EMBEDDING = "linear/w"


def find_scope(names: Collection[str]) -> str:
    """The generator's scope in a checkpoint's variable names (SCOPE in the published modules).

    Found by its GenZ weight so that a module exported under another outer scope
    still converts; SCOPE when there is none (the check then names what is missing).
    """
    suffix = "Generator/" + _GEN_Z + "w" + EMA
    scopes = sorted(n[: -len(suffix)] + "Generator/" for n in names if n.endswith(suffix))
    if len(scopes) > 1:
        raise CheckpointMismatchError(f"the checkpoint holds {len(scopes)} generators "
                                      f"(scopes {scopes}); expected one")
    return scopes[0] if scopes else SCOPE


def _block_scope(i: int) -> str:
    return "GBlock/" if i == 0 else f"GBlock_{i}/"


def config_from_shapes(shapes: Mapping[str, tuple[int, ...]], scope: str = SCOPE) -> BigBiGANConfig:
    """The widths of the generator in a checkpoint, read off its GenZ and embedding shapes."""
    gen_z_w, embedding = scope + _GEN_Z + "w" + EMA, scope + _EMBEDDING + EMA
    for name in (gen_z_w, embedding):
        if name not in shapes:
            raise CheckpointMismatchError(f"variable {name} is missing: not a BigBiGAN generator")
    (chunk, out), (_, embed_dim) = _as_2d(shapes, gen_z_w), _as_2d(shapes, embedding)
    if out % (4 * 4 * _CHANNELS_128[0]):
        raise CheckpointMismatchError(
            f"variable {gen_z_w} has shape {tuple(shapes[gen_z_w])}: its {out} outputs are not "
            f"4 x 4 x 16 x a channel width")
    try:
        return BigBiGANConfig.from_dict({
            "z_dim": chunk * len(_CHANNELS_128), "embed_dim": embed_dim,  # a chunk per block + 1
            "channel_width": out // (4 * 4 * _CHANNELS_128[0])})
    except ValueError as e:
        raise CheckpointMismatchError(f"the shapes of {gen_z_w} and {embedding} give {e}") from e


def _as_2d(shapes, name):
    shape = tuple(shapes[name])
    if len(shape) != 2:
        raise CheckpointMismatchError(f"variable {name} has shape {shape}, expected a matrix")
    return shape


def expected_variables(config: BigBiGANConfig, scope: str = SCOPE) -> dict[str, tuple[int, ...]]:
    """Every checkpoint variable the conversion reads, with its shape, for `config`."""
    shapes: dict[str, tuple[int, ...]] = {}
    cond = config.z_chunk + config.embed_dim

    def sn(prefix, shape, bias=True):
        shapes[prefix + "w" + EMA] = shape
        shapes[prefix + "u0"] = (1, shape[-1])
        if bias:
            shapes[prefix + "b" + EMA] = (shape[-1],)

    def hyper_bn(prefix, features):
        sn(prefix + "scale/", (cond, features), bias=False)
        sn(prefix + "offset/", (cond, features), bias=False)
        shapes[prefix + "accumulated_mean"] = (features,)
        shapes[prefix + "accumulated_var"] = (features,)

    shapes[scope + _EMBEDDING + EMA] = (1, config.embed_dim)
    first = config.blocks[0][0]
    sn(scope + _GEN_Z, (config.z_chunk, 4 * 4 * first))
    for i, (cin, cout) in enumerate(config.blocks):
        block = scope + _block_scope(i)
        hyper_bn(block + "BatchNorm/", cin)
        sn(block + "conv0/", (3, 3, cin, cout))
        hyper_bn(block + "BatchNorm_1/", cout)
        sn(block + "conv1/", (3, 3, cout, cout))
        sn(block + "conv_sc/", (1, 1, cin, cout))
    c = config.blocks[config.attention_index][0]
    for name, cin, cout in (("theta", c, c // 8), ("phi", c, c // 8), ("g", c, c // 2),
                            ("o_conv", c // 2, c)):
        sn(scope + f"attention/{name}/", (1, 1, cin, cout), bias=False)
    shapes[scope + "attention/gamma" + EMA] = (1,)
    last = config.blocks[-1][1]
    for name in ("scale" + EMA, "offset" + EMA, "accumulated_mean", "accumulated_var"):
        shapes[scope + "BatchNorm/" + name] = (last,)
    sn(scope + "conv_2d/", (3, 3, last, 3))
    return shapes


def _fits(shape: tuple[int, ...], want: tuple[int, ...]) -> bool:
    """Exact, except that vectors may come with or without unit axes ((1, n) ~ (n,), (1,) ~ ())."""
    if tuple(shape) == want:
        return True
    squeezed = tuple(d for d in want if d != 1)
    return len(squeezed) <= 1 and tuple(d for d in shape if d != 1) == squeezed


def check_variables(shapes: Mapping[str, Any], config: BigBiGANConfig, scope: str = SCOPE) -> None:
    """Raises CheckpointMismatchError naming the first missing or misshapen variable."""
    expected = expected_variables(config, scope)
    missing = [k for k in expected if k not in shapes]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointMismatchError(f"variable {missing[0]} is missing{more}")
    for name, want in expected.items():
        got = tuple(shapes[name])
        if not _fits(got, want):
            raise CheckpointMismatchError(
                f"variable {name} has shape {got}, expected {want} (a BigBiGAN generator of "
                f"channel width {config.channel_width}, z chunks of {config.z_chunk}, "
                f"embedding {config.embed_dim})")


def _spectral_normalise(w: np.ndarray, u0: np.ndarray, name: str) -> np.ndarray:
    """w / σ, σ from one power iteration from u0 on w as an (inputs, outputs) matrix.

    The module's spectral norm at inference: v = ‖u0 Wᵀ‖-normalised, u = ‖v W‖-
    normalised, σ = v W uᵀ (u0 is not updated outside training).
    """
    mat = w.reshape(-1, w.shape[-1]).astype(np.float64)
    u0 = u0.reshape(1, -1).astype(np.float64)

    def normalise(x):
        return x / np.sqrt(max(float(np.sum(x * x)), 1e-12))

    v = normalise(u0 @ mat.T)
    u = normalise(v @ mat)
    sigma = float((v @ mat @ u.T)[0, 0])
    if not np.isfinite(sigma) or sigma <= 0:
        raise CheckpointMismatchError(
            f"variable {name}: its spectral norm from u0 is {sigma}; the checkpoint is corrupt")
    return (w / sigma).astype(np.float32)


def params_from_tf_variables(read: Callable[[str], Any], shapes: Mapping[str, Any],
                             config: BigBiGANConfig, scope: str = SCOPE) -> dict:
    """Flax variables {"params", "batch_stats"} from a module's checkpoint variables.

    `shapes` maps the checkpoint's names to shapes and is checked first (so nothing
    is read from a checkpoint that does not fit); `read(name)` gives a variable's value.
    """
    check_variables(shapes, config, scope)
    expected = expected_variables(config, scope)

    def get(name):
        return np.asarray(read(scope + name), np.float32).reshape(expected[scope + name])

    def sn(prefix, bias=True):
        out = {"kernel": _spectral_normalise(get(prefix + "w" + EMA), get(prefix + "u0"),
                                             scope + prefix + "w" + EMA)}
        if bias:
            out["bias"] = get(prefix + "b" + EMA)
        return out

    def hyper_bn(prefix):
        return ({"scale": sn(prefix + "scale/", bias=False),
                 "offset": sn(prefix + "offset/", bias=False)},
                {"mean": get(prefix + "accumulated_mean"), "var": get(prefix + "accumulated_var")})

    params: dict[str, Any] = {"embedding": get(_EMBEDDING + EMA)[0], "gen_z": sn(_GEN_Z)}
    stats: dict[str, Any] = {}
    for i in range(len(config.blocks)):
        block = _block_scope(i)
        p, s = {}, {}
        p["bn_0"], s["bn_0"] = hyper_bn(block + "BatchNorm/")
        p["bn_1"], s["bn_1"] = hyper_bn(block + "BatchNorm_1/")
        p["conv_0"], p["conv_1"] = sn(block + "conv0/"), sn(block + "conv1/")
        p["conv_sc"] = sn(block + "conv_sc/")
        params[f"block_{i}"], stats[f"block_{i}"] = p, s
    params["attention"] = {name: sn(f"attention/{name}/", bias=False)
                           for name in ("theta", "phi", "g", "o_conv")}
    params["attention"]["gamma"] = get("attention/gamma" + EMA)
    params["bn_scale"] = get("BatchNorm/scale" + EMA)
    params["bn_bias"] = get("BatchNorm/offset" + EMA)
    stats["bn_mean"] = get("BatchNorm/accumulated_mean")
    stats["bn_var"] = get("BatchNorm/accumulated_var")
    params["conv_to_rgb"] = sn("conv_2d/")
    variables = {"params": params, "batch_stats": stats}

    # The mapping above and the module must agree leaf for leaf.
    want = jax.tree_util.tree_map(lambda x: tuple(x.shape), init_variables(config, abstract=True))
    got = jax.tree_util.tree_map(lambda x: tuple(x.shape), variables)
    if got != want:
        raise AssertionError(f"BigBiGAN conversion does not produce the module's variables: "
                             f"{got} != {want}")
    return variables
