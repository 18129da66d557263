"""Latent and pixel views: the configured σ, the ablations, ranges and colour maths."""

import colorsys
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from data import pixel, views


def _truncated_normal_std(bound=2.0):
    pdf = math.exp(-bound ** 2 / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(bound / math.sqrt(2))
    return math.sqrt(1 - 2 * bound * pdf / mass)


@pytest.mark.parametrize("sigma", [0.2, 1.0])
def test_gaussian_neighbour_has_the_configured_sigma(sigma):
    keys = jax.random.split(jax.random.key(0), 2000)
    spec = views.ViewSpec(kind="gaussian", sigma=sigma, num_views=2)
    s = jax.vmap(lambda k: views.sample(k, spec, z_dim=64, num_classes=10))(keys)
    delta = np.asarray(s["views"] - s["anchor"][:, None])
    np.testing.assert_allclose(delta.std(), sigma * _truncated_normal_std(), rtol=0.01)
    assert np.abs(delta).max() <= 2 * sigma + 1e-5  # ε is truncated at ±2
    assert np.abs(np.asarray(s["anchor"])).max() <= 2.0
    labels = np.asarray(s["label"])
    assert labels.min() >= 0 and labels.max() <= 9 and len(np.unique(labels)) == 10


def test_latent_none_repeats_the_anchor():
    s = views.sample(jax.random.key(1), views.ViewSpec(kind="none", sigma=1.0, num_views=3),
                     z_dim=8, num_classes=0)
    np.testing.assert_array_equal(s["views"], np.broadcast_to(s["anchor"], (3, 8)))
    assert int(s["label"]) == 0


def test_unknown_latent_kind_is_named():
    with pytest.raises(ValueError, match="views.latent"):
        views.sample(jax.random.key(0), views.ViewSpec(kind="angularr"), z_dim=4, num_classes=0)


def _many(kind, n=400, z_dim=64, num_classes=10, **kw):
    spec = views.ViewSpec(kind=kind, **kw)
    keys = jax.random.split(jax.random.key(7), n)
    s = jax.jit(jax.vmap(lambda k: views.sample(k, spec, z_dim=z_dim, num_classes=num_classes)))(keys)
    return {k: np.asarray(v, np.float64) for k, v in s.items()}


@pytest.mark.parametrize("sigma", [0.2, 1.0])
def test_angular_views_keep_the_anchor_norm(sigma):
    s = _many("angular", sigma=sigma, num_views=3)
    norm = np.linalg.norm(s["anchor"], axis=-1)
    np.testing.assert_allclose(np.linalg.norm(s["views"], axis=-1), norm[:, None].repeat(3, 1),
                               rtol=1e-5)
    # On the sphere, the view moved away from the anchor by an angle that grows with σ:
    # for ‖z‖ ≈ √d·0.88 and a step of σ·√d·0.88 orthogonal on average, tan θ ≈ σ.
    cos = np.einsum("nd,nvd->nv", s["anchor"], s["views"]) / norm[:, None] ** 2
    np.testing.assert_allclose(np.mean(np.arccos(np.clip(cos, -1, 1))), np.arctan(sigma), rtol=0.1)


def test_independent_views_keep_the_class_and_nothing_else():
    s = _many("independent", num_views=4, n=1000)
    labels = np.asarray(s["label"])
    assert len(np.unique(labels)) == 10  # the class is the anchor's, drawn as usual
    # The views are fresh latents: as spread as anchors, uncorrelated with their anchor.
    np.testing.assert_allclose(s["views"].std(), _truncated_normal_std(), rtol=0.02)
    corr = np.corrcoef(s["anchor"].ravel(), s["views"][:, 0].ravel())[0, 1]
    assert abs(corr) < 0.02, corr
    assert np.abs(s["views"][:, 0] - s["views"][:, 1]).mean() > 0.5  # and distinct from each other


def test_independent_views_refuse_an_unconditional_generator():
    with pytest.raises(ValueError, match="views.latent='independent'.*class-conditional"):
        views.sample(jax.random.key(0), views.ViewSpec(kind="independent"), z_dim=4, num_classes=0)


def test_multi_sigma_draws_each_view_sigma_from_the_list():
    sigmas = (0.1, 0.5, 1.5)
    s = _many("multi_sigma", n=300, z_dim=4096, sigmas=sigmas, num_views=4)
    # With 4096 coordinates a view's own σ is measured to about 1%.
    measured = (s["views"] - s["anchor"][:, None]).std(-1) / _truncated_normal_std()
    nearest = np.asarray(sigmas)[np.abs(measured[..., None] - np.asarray(sigmas)).argmin(-1)]
    np.testing.assert_allclose(measured, nearest, rtol=0.05)
    counts = np.array([(nearest == v).sum() for v in sigmas]) / nearest.size
    np.testing.assert_allclose(counts, 1 / 3, atol=0.05)  # uniform over the list
    assert len({tuple(row) for row in nearest}) > 10  # views of one instance mix σs


def test_every_view_type_keeps_the_same_anchor():
    key = jax.random.key(3)
    out = [views.sample(key, views.ViewSpec(kind=kind, sigmas=(0.3,)), z_dim=8, num_classes=5)
           for kind in views.LATENT_KINDS if kind != "steer"]  # steer: tests/test_steering.py
    for s in out[1:]:
        np.testing.assert_array_equal(s["anchor"], out[0]["anchor"])
        assert int(s["label"]) == int(out[0]["label"])


def test_pixel_views_stay_in_range_and_differ():
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(0, 1, (16, 32, 32, 3)), jnp.float32)
    cfg = pixel.PixelConfig(blur_prob=0.5)
    keys = jax.random.split(jax.random.key(0), 16)
    out = np.asarray(jax.jit(jax.vmap(lambda k, x: pixel.augment(k, x, 24, cfg)))(keys, images))
    assert out.shape == (16, 24, 24, 3)
    assert out.min() >= 0.0 and out.max() <= 1.0
    again = np.asarray(jax.vmap(lambda k, x: pixel.augment(k, x, 24, cfg))(
        jax.random.split(jax.random.key(1), 16), images))
    assert np.abs(out - again).mean() > 0.01  # other keys, other views


def test_pixel_none_is_the_identity_at_the_same_size():
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (32, 32, 3)), jnp.float32)
    np.testing.assert_array_equal(pixel.view(jax.random.key(0), x, "none", 32, pixel.PixelConfig()), x)


def test_full_crop_of_a_constant_image_is_constant():
    x = jnp.full((32, 32, 3), 0.3)
    cfg = pixel.PixelConfig(jitter_prob=0.0, gray_prob=0.0)
    out = np.asarray(pixel.augment(jax.random.key(3), x, 16, cfg))
    np.testing.assert_allclose(out, 0.3, atol=1e-5)


def test_hsv_round_trip_matches_colorsys():
    rgb = np.random.default_rng(4).uniform(0, 1, (200, 3)).astype(np.float32)
    hsv = np.asarray(pixel._rgb_to_hsv(jnp.asarray(rgb)))
    want = np.array([colorsys.rgb_to_hsv(*p) for p in rgb])
    np.testing.assert_allclose(hsv, want, atol=1e-5)
    back = np.asarray(pixel._hsv_to_rgb(jnp.asarray(hsv)))
    np.testing.assert_allclose(back, rgb, atol=1e-5)


def test_grayscale_view_has_equal_channels():
    x = jnp.asarray(np.random.default_rng(5).uniform(0, 1, (32, 32, 3)), jnp.float32)
    cfg = pixel.PixelConfig(gray_prob=1.0, jitter_prob=0.0, crop_scale=(1.0, 1.0),
                            crop_ratio=(1.0, 1.0), flip=False)
    out = np.asarray(pixel.augment(jax.random.key(0), x, 32, cfg))
    np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)
    want = np.asarray(x) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(out[..., 0], want, atol=1e-4)
