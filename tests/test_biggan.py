"""BigGAN-deep in Flax against the reference `pytorch-pretrained-biggan` package.

The full published biggan-deep-128 architecture is built by the reference package
with random weights (no download), given realistic spectral-norm vectors and
standing BatchNorm statistics, saved in the published format (pytorch_model.bin
+ config.json), converted with `models.convert`, loaded with
`models.generators.load`, and its images are compared with the reference's.
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pytorch_pretrained_biggan")

from pytorch_pretrained_biggan import BigGAN, BigGANConfig  # noqa: E402
from pytorch_pretrained_biggan import convert_tf_to_pytorch as reference_convert  # noqa: E402
from pytorch_pretrained_biggan.model import BigGANBatchNorm  # noqa: E402
from pytorch_pretrained_biggan.utils import truncated_noise_sample  # noqa: E402

from models import convert, generators  # noqa: E402
from models.generators import biggan  # noqa: E402

TOLERANCE = 1e-3


def _realistic_reference(config: BigGANConfig, seed: int) -> BigGAN:
    """The reference model with random weights whose images depend on z and the class.

    Random init leaves u, v random (so uᵀWv is noise), the attention gain at 0 and
    the standing statistics at 0/1; the published checkpoints instead have u, v
    from power iteration and statistics measured on the model's own activations.
    """
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = BigGAN(config).eval()  # eval: spectral norm uses the stored u, v as is
    with torch.no_grad():
        model.embeddings.weight.normal_(0.0, 0.5, generator=gen)
        for module in model.modules():
            if hasattr(module, "weight_u"):
                w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                v = module.weight_v
                for _ in range(10):
                    u = torch.nn.functional.normalize(w @ v, dim=0)
                    v = torch.nn.functional.normalize(w.t() @ u, dim=0)
                module.weight_u.copy_(torch.nn.functional.normalize(w @ v, dim=0))
                module.weight_v.copy_(v)
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.7)
        model.generator.bn.weight.uniform_(0.8, 1.2, generator=gen)
        model.generator.bn.bias.normal_(0.0, 0.1, generator=gen)

        # Standing statistics: measured on this model's activations (each BatchNorm
        # sees inputs already normalised by the ones before it), then varied per
        # truncation grid point so that picking the wrong point shows.
        def calibrate(module, args):
            x = args[0]
            mean, var = x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3))
            n = module.running_means.shape[0]
            noise = torch.randn(n, mean.numel(), generator=gen)
            module.running_means.copy_(mean + 0.2 * var.sqrt() * noise)
            module.running_vars.copy_(var * torch.exp(0.3 * torch.randn(n, mean.numel(),
                                                                        generator=gen)))

        hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules()
                 if isinstance(m, BigGANBatchNorm)]
        z = torch.from_numpy(truncated_noise_sample(batch_size=4, truncation=1.0, seed=seed))
        classes = torch.nn.functional.one_hot(torch.tensor([1, 207, 555, 980]),
                                              config.num_classes).float()
        model(z, classes, 1.0)
        for hook in hooks:
            hook.remove()
    return model


def _reference_images(model: BigGAN, z: np.ndarray, y: np.ndarray, truncation: float):
    one_hot = torch.nn.functional.one_hot(torch.from_numpy(y), model.config.num_classes).float()
    with torch.no_grad():
        out = model(torch.from_numpy(z), one_hot, truncation)
    return out.permute(0, 2, 3, 1).numpy()  # NCHW -> NHWC


@pytest.fixture(scope="module")
def published_128(tmp_path_factory):
    """(reference model, directory with pytorch_model.bin + config.json, converted DIR)."""
    config = reference_convert.BigGAN128
    # The package's defaults are the published 128 px config; check we build that one.
    assert config.to_dict() == BigGANConfig().to_dict()
    assert (config.channel_width, config.z_dim, config.num_classes) == (128, 128, 1000)
    root = tmp_path_factory.mktemp("biggan-deep-128")
    model = _realistic_reference(config, seed=0)
    torch.save(model.state_dict(), root / "pytorch_model.bin")
    (root / "config.json").write_text(config.to_json_string())
    out = root / "converted"
    rc = convert.main(["biggan", "--checkpoint", str(root / "pytorch_model.bin"),
                       "--config", str(root / "config.json"), "--out", str(out)])
    assert rc == 0
    return model, root, out


def test_converted_128_matches_reference(published_128):
    model, _, out = published_128
    generator = generators.load(str(out))
    assert generator.family == "biggan_deep"
    assert (generator.z_dim, generator.num_classes, generator.resolution) == (128, 1000, 128)

    # Sample 0 and 1 share the class, 0 and 2 share z.
    y = np.array([207, 207, 980])
    for truncation in (0.4, 0.734, 1.0):  # 0.734 lies between grid points 36 and 37
        z = truncated_noise_sample(batch_size=3, truncation=truncation, seed=1)
        z[2] = z[0]
        want = _reference_images(model, z, y, truncation)
        got = np.asarray(generator.apply(generator.params, jnp.asarray(z), jnp.asarray(y),
                                         truncation))
        assert got.shape == (3, 128, 128, 3) and got.dtype == np.float32
        diff = np.abs(got - want).max()
        print(f"truncation {truncation}: max |flax - reference| = {diff:.2e}")
        assert diff <= TOLERANCE, (truncation, diff)
        # The comparison means something only if the images vary with z and class
        # and are not saturated by tanh.
        assert np.abs(want[0] - want[1]).mean() > 0.05
        assert np.abs(want[0] - want[2]).mean() > 0.05
        assert np.mean(np.abs(want) > 0.99) < 0.5
        assert np.all(np.abs(got) <= 1.0)


@pytest.mark.parametrize("truncation", [0.02, 0.3, 0.4, 0.45, 0.6, 0.731, 0.99, 1.0])
def test_standing_statistics_interpolation(truncation):
    """Our BN statistics selection, concrete and traced, against the reference BatchNorm."""
    n_stats, features = 51, 6
    rng = np.random.default_rng(0)
    means = rng.normal(size=(n_stats, features)).astype(np.float32)
    variances = rng.uniform(0.5, 2.0, size=(n_stats, features)).astype(np.float32)
    x = rng.normal(size=(2, features, 3, 3)).astype(np.float32)
    ref = BigGANBatchNorm(features, n_stats=n_stats, eps=1e-4, conditional=False).eval()
    with torch.no_grad():
        ref.running_means.copy_(torch.from_numpy(means))
        ref.running_vars.copy_(torch.from_numpy(variances))
        ref.weight.fill_(1.0)
        ref.bias.fill_(0.0)
        want = ref(torch.from_numpy(x), truncation).numpy()
    for index, weight in (biggan.stats_interpolation(truncation, n_stats),
                          jax.jit(lambda t: biggan.stats_interpolation(t, n_stats))(
                              jnp.float32(truncation))):
        mean = weight[0] * means[index[0]] + weight[1] * means[index[1]]
        var = weight[0] * variances[index[0]] + weight[1] * variances[index[1]]
        got = (x - np.asarray(mean)[:, None, None]) / np.sqrt(np.asarray(var)[:, None, None]
                                                               + 1e-4)
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("resolution", [256, 512])
def test_published_architectures_convert(resolution):
    """The 256 and 512 px reference models map onto our module leaf for leaf."""
    ref_config = getattr(reference_convert, f"BigGAN{resolution}")
    config = biggan.BigGANConfig.from_dict(json.loads(ref_config.to_json_string()))
    assert config == biggan.PUBLISHED_CONFIGS[resolution]
    torch.manual_seed(0)
    state = {k: v.numpy() for k, v in BigGAN(ref_config).state_dict().items()}
    variables = biggan.params_from_state_dict(state, config)
    generator = biggan.build(config.to_dict())
    assert generator.resolution == resolution
    shape = jax.eval_shape(generator.apply, variables, jnp.zeros((2, 128)),
                           jnp.zeros((2,), jnp.int32), 0.5)
    assert shape.shape == (2, resolution, resolution, 3)


# ------------------------------------------------------------------------- bad input


def _convert(root, out, checkpoint=None, config=None):
    return convert.convert_biggan(str(checkpoint or root / "pytorch_model.bin"),
                                  str(config or root / "config.json"), str(out),
                                  log=lambda *_: None)


def test_other_architecture_is_rejected(published_128, tmp_path):
    _, root, _ = published_128
    ckpt = tmp_path / "resnet.bin"
    torch.save(torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
               .state_dict(), ckpt)
    with pytest.raises(convert.ConversionError) as info:
        _convert(root, tmp_path / "out", checkpoint=ckpt)
    message = str(info.value)
    assert "missing keys" in message and "embeddings.weight" in message
    assert "unexpected keys" in message and "0.weight" in message
    assert not (tmp_path / "out").exists()


def test_truncated_checkpoint_is_rejected(published_128, tmp_path, capsys):
    _, root, _ = published_128
    ckpt = tmp_path / "pytorch_model.bin"
    with open(root / "pytorch_model.bin", "rb") as f:
        ckpt.write_bytes(f.read(1 << 20))
    out = tmp_path / "out"
    rc = convert.main(["biggan", "--checkpoint", str(ckpt), "--config",
                       str(root / "config.json"), "--out", str(out)])
    assert rc == 1
    assert f"could not read checkpoint {ckpt}" in capsys.readouterr().err
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith("out")]


def test_mismatched_config_is_rejected(published_128, tmp_path):
    _, root, converted = published_128
    config = json.loads((root / "config.json").read_text())

    narrow = dict(config, channel_width=64)
    (tmp_path / "narrow.json").write_text(json.dumps(narrow))
    with pytest.raises(convert.ConversionError) as info:
        _convert(root, tmp_path / "out", config=tmp_path / "narrow.json")
    message = str(info.value)
    assert "generator.gen_z.weight_orig" in message
    assert "(32768, 256)" in message and "(16384, 256)" in message

    (tmp_path / "256.json").write_text(reference_convert.BigGAN256.to_json_string())
    with pytest.raises(convert.ConversionError, match="missing keys.*generator.layers.11"):
        _convert(root, tmp_path / "out", config=tmp_path / "256.json")

    # A failed conversion into an existing DIR leaves it as it was.
    before = sorted(os.listdir(converted))
    with pytest.raises(convert.ConversionError):
        convert.convert_biggan(str(root / "pytorch_model.bin"), str(tmp_path / "narrow.json"),
                               str(converted), overwrite=True, log=lambda *_: None)
    assert sorted(os.listdir(converted)) == before
    assert not (tmp_path / "out").exists()
