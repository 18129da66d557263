"""data.source=mix: generated instances and real images in one batch, placed by position."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from configs import genviews
from data import pixel, views
from errors import ConfigError
from tasks.contrastive import pixel_config
from tasks.validate import validate


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1 / 3, 0.5, 0.75, 1.0])
def test_mix_rows_place_the_ratio_by_position_whatever_the_device_count(ratio):
    batch = 24
    k, m = views.mix_period(ratio)
    assert abs(k / m - ratio) < 1e-12
    gen, real = views.mix_rows(batch, ratio)
    assert len(gen) == round(ratio * batch) and len(gen) + len(real) == batch
    assert sorted([*gen, *real]) == list(range(batch))
    for start in range(0, batch, m):  # every period holds k generated positions
        assert np.sum((gen >= start) & (gen < start + m)) == k
    for devices in (1, 2, 3, 4, 6):  # each device's rows, shifted to its positions
        local = batch // devices
        if local % m:
            continue
        shares = [d * local + views.mix_rows(local, ratio)[0] for d in range(devices)]
        np.testing.assert_array_equal(np.concatenate(shares), gen)


def _config(source: str, tfds_dir: str, **views_keys):
    c = genviews.get_config("smoke")
    c.data.source = source
    c.data.data_dir = tfds_dir
    c.data.mix_ratio = 0.5
    for key, value in views_keys.items():
        c.views[key] = value
    return c


def test_bad_mix_ratios_are_refused_by_their_key(tfds_dir):
    c = _config("mix", tfds_dir)
    c.data.mix_ratio = 0.3  # 3/10: 10 does not divide a per-device batch of 16
    with pytest.raises(ConfigError, match="data.mix_ratio"):
        validate(c, num_devices=1)
    c.data.mix_ratio = 1.5
    with pytest.raises(ConfigError, match="data.mix_ratio"):
        validate(c, num_devices=1)
    c.data.mix_ratio = 0.25  # 1/4: a per-device batch of 16 / 8 = 2 is not a multiple of 4
    validate(c, num_devices=1)
    with pytest.raises(ConfigError, match="data.mix_ratio"):
        validate(c, num_devices=8)
    c.views.pixel_strength_real = 1.5
    with pytest.raises(ConfigError, match="views.pixel_strength_real"):
        validate(c, num_devices=1)


def test_mix_views_are_the_generated_and_the_real_views_of_their_rows(tfds_dir):
    # Each row of a mixed batch holds what the generator-only task or the real-only task
    # makes for that example (the same keys), as data.mix_ratio places it.
    mix = tasks.get(_config("mix", tfds_dir, pixel_strength_real=0.5))
    gen_task = tasks.get(_config("generator", tfds_dir, pixel_strength_generated=1.0))
    real_task = tasks.get(_config("real", tfds_dir, pixel_strength_real=0.5))
    batch = next(mix.batches(3))
    index, image, label = (jnp.asarray(batch[k]) for k in ("index", "image", "label"))
    step = 3
    got = jax.jit(mix.make_views)(step, index, image, label)
    gen, real = views.mix_rows(len(index), 0.5)
    want_gen = jax.jit(gen_task.make_views)(step, index[gen])
    want_real = jax.jit(real_task.make_views)(step, index[real], image[real], label[real])
    v = mix.config.views.num_views
    rows = lambda x: np.asarray(x).reshape((-1, v) + np.shape(x)[1:])  # noqa: E731  (b, V, ...)
    for key in ("image", "id", "label"):
        np.testing.assert_allclose(rows(got[key])[gen], rows(want_gen[key]), atol=1e-6, err_msg=key)
        np.testing.assert_allclose(rows(got[key])[real], rows(want_real[key]), atol=1e-6, err_msg=key)
    assert got["z"] is None


def test_pixel_strength_scales_the_transform_from_none_to_the_configured_one():
    c = genviews.get_config("smoke")
    s = c.views.jitter_strength
    assert pixel_config(c, 1.0) == pixel.PixelConfig(  # exactly the configured transform
        crop_scale=(c.views.crop_scale_min, 1.0), flip=c.views.flip, crop=True, brightness=s,
        contrast=s, saturation=s, hue=s / 4, jitter_prob=c.views.jitter_prob,
        gray_prob=c.views.gray_prob, blur_prob=c.views.blur_prob)
    half = pixel_config(c, 0.5)
    assert half.crop_scale[0] == pytest.approx(1 - 0.5 * (1 - c.views.crop_scale_min))
    assert half.brightness == pytest.approx(0.5 * c.views.jitter_strength)
    c.views.flip = False
    none = pixel_config(c, 0.0)  # no crop, no jitter, no grayscale: the image itself
    image = jax.random.uniform(jax.random.key(0), (32, 32, 3))
    for i in range(8):
        view = pixel.view(jax.random.key(i), image, "simclr", 32, none)
        np.testing.assert_allclose(np.asarray(view), np.asarray(image), atol=1e-5)
