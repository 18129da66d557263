"""BigBiGAN's generator in Flax against a NumPy forward pass of the TF-Hub module's variables.

No BigBiGAN module can be downloaded here, so the test writes a TF checkpoint
itself, laid out as an unpacked TF-Hub module (MODULE/variables/variables.*),
with the module's variable names (GenEncWrapper/Generator/..., the EMA weights,
u0 vectors, accumulated BatchNorm statistics, plus variables the conversion must
ignore) at a channel width of 4 instead of 96, and random values. It converts it
with the CLI, loads it with `models.generators.load`, and compares the images
with a NumPy forward pass written here from the variables themselves.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from models import convert, generators
from models.generators import bigbigan

SCOPE = "GenEncWrapper/Generator/"
EMA = "/ema_0.9999"
WIDTH = 4  # the published modules: 96
CHUNK, EMBED = 20, 128  # z = 6 chunks of 20; the dummy class's embedding
MULTIPLIERS = (16, 16, 8, 4, 2, 1)
TOLERANCE = 1e-4


def module_shapes(width: int = WIDTH) -> dict[str, tuple[int, ...]]:
    """The generator's variables in a BigBiGAN TF-Hub module, at channel width `width`.

    Names as the public ports read them (BigGANsAreWatching's bigbigan2biggan maps
    them onto TF-Hub BigGAN-128's, which BigGAN-PyTorch's converter reads):
    "GenZ", "GBlock[_i]/{conv0,conv1,conv_sc,BatchNorm,BatchNorm_1}",
    "attention/{theta,phi,g,o_conv,gamma}", "BatchNorm", "conv_2d", "linear";
    weights w, b (and their EMA w/ema_0.9999, b/ema_0.9999), spectral-norm vector u0,
    BatchNorm scale/offset and accumulated_mean/accumulated_var/accumulation_counter.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    channels = [m * width for m in MULTIPLIERS]

    def layer(name, w_shape, bias=True):
        for suffix in ("", EMA):
            shapes[f"{SCOPE}{name}/w{suffix}"] = w_shape
            if bias:
                shapes[f"{SCOPE}{name}/b{suffix}"] = (w_shape[-1],)
        shapes[f"{SCOPE}{name}/u0"] = (1, w_shape[-1])

    def cbn(name, c):
        layer(f"{name}/scale", (CHUNK + EMBED, c), bias=False)
        layer(f"{name}/offset", (CHUNK + EMBED, c), bias=False)
        shapes[f"{SCOPE}{name}/accumulated_mean"] = (c,)
        shapes[f"{SCOPE}{name}/accumulated_var"] = (c,)
        shapes[f"{SCOPE}{name}/accumulation_counter"] = ()

    shapes[SCOPE + "linear/w"] = shapes[SCOPE + "linear/w" + EMA] = (1, EMBED)
    layer("GenZ/G_linear", (CHUNK, 4 * 4 * channels[0]))
    for i in range(5):
        block = "GBlock" if i == 0 else f"GBlock_{i}"
        cin, cout = channels[i], channels[i + 1]
        cbn(f"{block}/BatchNorm", cin)
        cbn(f"{block}/BatchNorm_1", cout)
        layer(f"{block}/conv0", (3, 3, cin, cout))
        layer(f"{block}/conv1", (3, 3, cout, cout))
        layer(f"{block}/conv_sc", (1, 1, cin, cout))
    a = channels[4]  # attention on the input of the last block, at 64x64
    layer("attention/theta", (1, 1, a, a // 8), bias=False)
    layer("attention/phi", (1, 1, a, a // 8), bias=False)
    layer("attention/g", (1, 1, a, a // 2), bias=False)
    layer("attention/o_conv", (1, 1, a // 2, a), bias=False)
    shapes[SCOPE + "attention/gamma"] = shapes[SCOPE + "attention/gamma" + EMA] = (1,)
    for name in ("scale", "offset"):
        shapes[f"{SCOPE}BatchNorm/{name}"] = shapes[f"{SCOPE}BatchNorm/{name}{EMA}"] = (width,)
    shapes[SCOPE + "BatchNorm/accumulated_mean"] = shapes[SCOPE + "BatchNorm/accumulated_var"] = (width,)
    shapes[SCOPE + "BatchNorm/accumulation_counter"] = ()
    layer("conv_2d", (3, 3, width, 3))
    shapes["GenEncWrapper/Encoder/ResNet/conv1/w"] = (7, 7, 3, 8)  # not the generator's
    return shapes


# ------------------------------------------------------------- the NumPy reference


def _conv(x, w, b=None):
    """SAME convolution, NHWC x HWIO, stride 1."""
    k = w.shape[0]
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    h, wd = x.shape[1:3]
    out = sum(np.einsum("bhwi,io->bhwo", xp[:, dy:dy + h, dx:dx + wd], w[dy, dx])
              for dy in range(k) for dx in range(k))
    return out if b is None else out + b


def _up(x):
    return x.repeat(2, axis=1).repeat(2, axis=2)


def _pool(x):
    b, h, w, c = x.shape
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


class Reference:
    """The generator's forward pass from the module's variables (float64 NumPy).

    With `calibrate`, each BatchNorm's accumulated statistics are first set from
    the activations it sees (varied by noise), so that the synthetic generator's
    images are neither saturated nor constant.
    """

    def __init__(self, v: dict[str, np.ndarray]):
        self.v = v

    def weight(self, name):
        """w_ema / σ: σ = ‖Wᵀ v‖ with v = W u0 / ‖W u0‖, W the (inputs, outputs) matrix."""
        w = self.v[SCOPE + name + "/w" + EMA].astype(np.float64)
        mat = w.reshape(-1, w.shape[-1])
        v = mat @ self.v[SCOPE + name + "/u0"].reshape(-1)
        v /= np.linalg.norm(v)
        return w / np.linalg.norm(mat.T @ v)

    def bias(self, name):
        return self.v[SCOPE + name + "/b" + EMA]

    def bn(self, name, x, gain, bias, calibrate, rng):
        mean, var = SCOPE + name + "/accumulated_mean", SCOPE + name + "/accumulated_var"
        if calibrate:
            m, s = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
            self.v[mean] = (m + 0.2 * np.sqrt(s) * rng.normal(size=m.shape)).astype(np.float32)
            self.v[var] = (s * np.exp(0.3 * rng.normal(size=s.shape))).astype(np.float32)
        x = (x - self.v[mean]) / np.sqrt(self.v[var] + 1e-4)
        return x * gain[:, None, None, :] + bias[:, None, None, :]

    def cbn(self, name, x, cond, calibrate, rng):
        """The conditional BatchNorm: gain 1 + cond·W_scale, bias cond·W_offset."""
        gain = 1 + cond @ self.weight(name + "/scale")
        bias = cond @ self.weight(name + "/offset")
        return self.bn(name, x, gain, bias, calibrate, rng)

    def __call__(self, z, calibrate=False, rng=None):
        z = z.astype(np.float64)
        b = z.shape[0]
        chunks = np.split(z, 6, axis=1)
        embedding = np.repeat(self.v[SCOPE + "linear/w" + EMA], b, axis=0)
        h = chunks[0] @ self.weight("GenZ/G_linear") + self.bias("GenZ/G_linear")
        h = h.reshape(b, 4, 4, -1)
        for i in range(5):
            block = "GBlock" if i == 0 else f"GBlock_{i}"
            if i == 4:
                h = self.attention(h)
            cond = np.concatenate([chunks[i + 1], embedding], axis=1)
            y = self.cbn(f"{block}/BatchNorm", h, cond, calibrate, rng)
            y = _conv(_up(np.maximum(y, 0)), self.weight(f"{block}/conv0"), self.bias(f"{block}/conv0"))
            y = self.cbn(f"{block}/BatchNorm_1", y, cond, calibrate, rng)
            y = _conv(np.maximum(y, 0), self.weight(f"{block}/conv1"), self.bias(f"{block}/conv1"))
            h = y + _conv(_up(h), self.weight(f"{block}/conv_sc"), self.bias(f"{block}/conv_sc"))
        gain = np.broadcast_to(self.v[SCOPE + "BatchNorm/scale" + EMA], (b, h.shape[-1]))
        bias = np.broadcast_to(self.v[SCOPE + "BatchNorm/offset" + EMA], (b, h.shape[-1]))
        h = np.maximum(self.bn("BatchNorm", h, gain, bias, calibrate, rng), 0)
        return np.tanh(_conv(h, self.weight("conv_2d"), self.bias("conv_2d")))

    def attention(self, x):
        b, hh, ww, c = x.shape
        theta = (x @ self.weight("attention/theta")[0, 0]).reshape(b, hh * ww, -1)
        phi = _pool(x @ self.weight("attention/phi")[0, 0]).reshape(b, hh * ww // 4, -1)
        g = _pool(x @ self.weight("attention/g")[0, 0]).reshape(b, hh * ww // 4, -1)
        logits = theta @ phi.transpose(0, 2, 1)
        attn = np.exp(logits - logits.max(-1, keepdims=True))
        attn /= attn.sum(-1, keepdims=True)
        o = (attn @ g).reshape(b, hh, ww, c // 2) @ self.weight("attention/o_conv")[0, 0]
        return x + self.v[SCOPE + "attention/gamma" + EMA] * o


# ------------------------------------------------------------------ the module file


def random_variables(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    values = {}
    for name, shape in module_shapes().items():
        if name.endswith("accumulation_counter"):
            values[name] = np.float32(16.0)
        elif "/u0" in name:
            values[name] = rng.normal(size=shape)
        elif "accumulated_var" in name or name.endswith(("BatchNorm/scale", "BatchNorm/scale" + EMA)):
            values[name] = rng.uniform(0.8, 1.2, size=shape)
        elif "gamma" in name:
            values[name] = np.full(shape, 0.7)
        else:
            values[name] = rng.normal(0.0, 0.3 if "/b" in name else 1.0, size=shape)
    values = {k: np.asarray(v, np.float32) for k, v in values.items()}
    # BatchNorm statistics measured on the synthetic generator's own activations.
    Reference(values)(_latents(8, seed=99), calibrate=True, rng=rng)
    return values


def write_module(directory, values: dict[str, np.ndarray]) -> str:
    """An unpacked TF-Hub module's layout: DIR/variables/variables.{index,data-*}."""
    import tensorflow as tf  # here, not at collection: 7 s of each pytest worker's start

    os.makedirs(os.path.join(directory, "variables"), exist_ok=True)
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=os.path.join(str(directory), "variables", "variables"),
                      tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[values[n] for n in names])
    return str(directory)


def _latents(batch: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(size=(batch, 6 * CHUNK)), -2, 2).astype(np.float32)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(variables, module DIR, converted DIR)."""
    root = tmp_path_factory.mktemp("bigbigan")
    values = random_variables()
    module = write_module(root / "bigbigan-test-module", values)
    out = root / "converted"
    assert convert.main(["bigbigan", "--checkpoint", module, "--out", str(out)]) == 0
    return values, module, out


def test_converted_generator_matches_the_numpy_forward_pass(converted):
    values, _, out = converted
    generator = generators.load(str(out))
    assert generator.family == "bigbigan"
    assert (generator.z_dim, generator.num_classes, generator.resolution) == (120, 0, 128)
    assert generator.hparams["channel_width"] == WIDTH

    z = _latents(3, seed=1)
    z[2, :CHUNK] = z[0, :CHUNK]  # 0 and 2 share the first chunk (the 4x4 input), not the rest
    want = Reference(dict(values))(z)
    got = np.asarray(generator.apply(generator.params, jnp.asarray(z), None))
    assert got.shape == (3, 128, 128, 3) and got.dtype == np.float32
    diff = np.abs(got - want).max()
    print(f"max |flax - numpy| = {diff:.2e}")
    assert diff <= TOLERANCE
    # y and truncation change nothing: the generator is unconditional.
    again = generator.apply(generator.params, jnp.asarray(z), jnp.zeros(3, jnp.int32), 0.5)
    np.testing.assert_array_equal(np.asarray(again), got)
    # The comparison means something only if the images vary with every part of z
    # and are not saturated by tanh.
    assert np.abs(want[0] - want[1]).mean() > 0.05 and np.abs(want[0] - want[2]).mean() > 0.05
    assert np.mean(np.abs(want) > 0.99) < 0.5
    assert np.all(np.abs(got) <= 1.0)


def test_published_size_maps_onto_the_module_leaf_for_leaf():
    """At the modules' width (96) the expected variables are those listed above, and the
    converted tree runs to (B, 128, 128, 3) (shapes only: nothing is computed)."""
    shapes = module_shapes(96)
    config = bigbigan.config_from_shapes(shapes, bigbigan.find_scope(shapes))
    assert config == bigbigan.BigBiGANConfig()
    assert (config.z_dim, config.channel_width, config.embed_dim) == (120, 96, 128)
    expected = bigbigan.expected_variables(config)
    assert set(expected) <= set(shapes)
    # Everything read is the EMA weights, u0 and the accumulated statistics.
    assert {n for n in shapes if n.endswith(EMA) or n.endswith("/u0") or "accumulated_" in n} \
        == set(expected)
    bigbigan.check_variables(shapes, config)
    variables = bigbigan.init_variables(config, abstract=True)
    generator = generators.build("bigbigan", config.to_dict())
    images = jax.eval_shape(generator.apply, variables, jnp.zeros((2, 120)), None)
    assert images.shape == (2, 128, 128, 3)
    n = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables["params"]))
    assert 65e6 < n < 75e6, n  # BigGAN-128's generator: about 70M parameters


def test_another_outer_scope_and_vector_shapes_still_convert():
    shapes = {"module/" + k: v for k, v in module_shapes().items()}
    # u0 stored as a vector, gamma as a scalar: the same numbers.
    shapes["module/" + SCOPE + "conv_2d/u0"] = (3,)
    shapes["module/" + SCOPE + "attention/gamma" + EMA] = ()
    scope = bigbigan.find_scope(shapes)
    assert scope == "module/" + SCOPE
    bigbigan.check_variables(shapes, bigbigan.config_from_shapes(shapes, scope), scope)


def test_random_init_has_the_converted_structure(converted):
    _, _, out = converted
    loaded = generators.load(str(out))
    generator = generators.build("bigbigan", bigbigan.small_hparams(120, 0, 128, WIDTH))
    params = jax.eval_shape(generator.init, jax.random.key(0))  # compiling init takes ~15 s
    shape = jax.tree_util.tree_map(lambda x: tuple(x.shape), params)
    assert shape == jax.tree_util.tree_map(lambda x: tuple(x.shape), loaded.params)
    with pytest.raises(ValueError, match="unconditional"):
        bigbigan.small_hparams(120, 10, 128, WIDTH)
    with pytest.raises(ValueError, match="z_dim"):
        bigbigan.small_hparams(100, 0, 128, WIDTH)


# ------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name, shape", [
    (SCOPE + "GBlock_3/conv1/w" + EMA, None),
    (SCOPE + "attention/o_conv/u0", None),
    (SCOPE + "GBlock_2/BatchNorm_1/accumulated_var", None),
    (SCOPE + "GBlock_1/conv0/w" + EMA, (3, 3, 64, 33)),
    (SCOPE + "GBlock/BatchNorm/scale/w" + EMA, (147, 64)),
])
def test_missing_or_misshapen_variable_is_named_and_nothing_is_written(
        converted, tmp_path, capsys, name, shape):
    values, _, _ = converted
    values = dict(values)
    if shape is None:
        del values[name]
    else:
        values[name] = np.zeros(shape, np.float32)
    module = write_module(tmp_path / "module", values)
    out = tmp_path / "out"
    assert convert.main(["bigbigan", "--checkpoint", module, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"variable {name} " in err
    assert ("is missing" if shape is None else f"has shape {shape}") in err
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out")]


def test_failed_conversion_leaves_an_existing_dir_and_other_inputs_are_named(converted, tmp_path):
    values, good, out = converted
    before = sorted(os.listdir(out))
    broken = dict(values)
    del broken[SCOPE + "linear/w" + EMA]
    module = write_module(tmp_path / "broken", broken)
    with pytest.raises(convert.ConversionError, match="linear/w/ema_0.9999 is missing"):
        convert.convert_bigbigan(module, str(out), overwrite=True, log=lambda *_: None)
    assert sorted(os.listdir(out)) == before

    with pytest.raises(convert.ConversionError, match="variables.index is missing"):
        convert.convert_bigbigan(str(tmp_path), str(tmp_path / "x"), log=lambda *_: None)
    with pytest.raises(convert.ConversionError, match="does not exist"):
        convert.convert_bigbigan(str(tmp_path / "nowhere"), str(tmp_path / "x"), log=lambda *_: None)
    with pytest.raises(convert.ConversionError, match="exists and is not empty"):
        convert.convert_bigbigan(good, str(out), log=lambda *_: None)
