"""The sprite generator and its VAE training, against independent references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import generator as generator_config
from models import generators
from models.generators import sprites
from tasks import sprites as sprites_task
from tasks.sprites import SpritesTask


def _bilinear(template: np.ndarray, row: float, col: float, outside: float) -> float:
    """Bilinear interpolation at (row, col), reading `outside` beyond the array."""
    r0, c0 = int(np.floor(row)), int(np.floor(col))
    total = 0.0
    for dr in (0, 1):
        for dc in (0, 1):
            weight = (1 - abs(row - (r0 + dr))) * (1 - abs(col - (c0 + dc)))
            inside = 0 <= r0 + dr < template.shape[0] and 0 <= c0 + dc < template.shape[1]
            total += weight * (template[r0 + dr, c0 + dc] if inside else outside)
    return total


def _render_loop(template, angle, scale, centre, fg, bg, gradient, resolution, k):
    """One image, pixel by pixel and supersample by supersample, from the definitions."""
    size = template.shape[0]
    image = np.zeros((resolution, resolution, 3))
    for i in range(resolution):
        for j in range(resolution):
            cover = 0.0
            for a in range(k):
                for b in range(k):
                    y = ((i * k + a) + 0.5) / (resolution * k) * 2 - 1
                    x = ((j * k + b) + 0.5) / (resolution * k) * 2 - 1
                    dx, dy = x - centre[0], y - centre[1]
                    u = (np.cos(angle) * dx + np.sin(angle) * dy) / scale
                    v = (-np.sin(angle) * dx + np.cos(angle) * dy) / scale
                    logit = _bilinear(template, (v + 1) / 2 * (size - 1), (u + 1) / 2 * (size - 1),
                                      sprites._OUTSIDE)
                    cover += 1 / (1 + np.exp(-logit)) / k ** 2
            yc = (i + 0.5) / resolution * 2 - 1
            xc = (j + 0.5) / resolution * 2 - 1
            back = bg + gradient[0] * xc + gradient[1] * yc
            image[i, j] = cover * fg + (1 - cover) * back
    return np.clip(image, -1, 1)


def test_render_matches_a_pixel_loop():
    rng = np.random.default_rng(0)
    template = rng.normal(0, 4, (9, 9)).astype(np.float32)
    angle, scale, centre = 0.7, 0.6, np.array([0.2, -0.3])
    fg, bg, gradient = np.array([0.9, -0.5, 0.1]), np.array([-0.2, 0.4, 0.3]), np.array([0.3, -0.2])
    got = sprites.render(jnp.asarray(template[None]), jnp.array([[np.cos(angle), np.sin(angle)]]),
                         jnp.array([scale]), jnp.asarray(centre[None]), jnp.asarray(fg[None]),
                         jnp.asarray(bg[None]), jnp.asarray(gradient[None]), 8, 2)
    want = _render_loop(template, angle, scale, centre, fg, bg, gradient, 8, 2)
    np.testing.assert_allclose(np.asarray(got[0]), want, atol=2e-5)


def test_turn_offset_rotates_the_pose():
    g = sprites.SpriteGenerator(z_dim=4, num_classes=3, resolution=16, width=8)
    z = jax.random.normal(jax.random.key(0), (2, 4))
    y = jnp.array([0, 2])
    params = g.init(jax.random.key(1), z, y)
    params["params"]["templates"] = jax.random.normal(jax.random.key(2), (3, 48, 48)) * 4
    full_turn = g.apply(params, z, y, 2 * np.pi)
    np.testing.assert_allclose(np.asarray(full_turn), np.asarray(g.apply(params, z, y)), atol=1e-5)
    assert np.abs(np.asarray(g.apply(params, z, y, 1.0) - g.apply(params, z, y))).max() > 0.05


def test_foreground_finds_a_disc_on_a_shaded_noisy_background():
    rng = np.random.default_rng(0)
    t = (np.arange(32) + 0.5) / 16 - 1
    yy, xx = np.meshgrid(t, t, indexing="ij")
    disc = np.hypot(xx - 0.2, yy + 0.1) < 0.4
    background = 0.3 + 0.2 * xx[..., None] + rng.normal(0, 0.04, (32, 32, 3))
    image = np.where(disc[..., None], np.array([0.9, 0.8, 0.2]), background)
    image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    mask, contrast = sprites_task.foreground(image)
    assert contrast > 0.5
    assert (mask.astype(bool) == disc).mean() > 0.99


def test_templates_start_centred_on_a_clear_image_of_each_class():
    image = np.zeros((2, 32, 32, 3), np.uint8)
    image[0, 2:10, 20:30] = 255  # an off-centre rectangle, class 1; image 1 is blank
    templates = sprites_task.templates_from_images(image, np.array([1, 0]), 3, 48)
    # of two images of class 1, the one of higher contrast
    faint = image[:1] // 8
    faint[0, 20:30, 2:10] = 40
    assert np.array_equal(templates[1], sprites_task.templates_from_images(
        np.concatenate([faint, image]), np.array([1, 1, 0]), 3, 48)[1])
    inside = templates[1] > 0
    rows, cols = np.nonzero(inside)
    assert abs(rows.mean() - 23.5) < 1 and abs(cols.mean() - 23.5) < 1  # centred
    # scaled so that its farthest pixel is at TEMPLATE_RADIUS: the corners of the 8×10
    # rectangle, whose sides keep their ratio
    t = np.linspace(-1, 1, 48)
    radius = np.hypot(t[rows], t[cols])
    assert abs(radius.max() - sprites_task.TEMPLATE_RADIUS) < 2 / 47
    height, width = np.ptp(t[rows]), np.ptp(t[cols])
    assert abs(height / width - 8 / 10) < 0.1
    np.testing.assert_array_equal(templates[2], np.asarray(sprites.disc_template(48)))  # no image of class 2


def test_vae_loss_terms_match_their_formulas(tfds_dir):
    config = generator_config.get_config("smoke")
    config.data.data_dir = tfds_dir
    task = SpritesTask(config)
    state = task.init_state()
    images = jnp.asarray(task.dataset.images[:4], jnp.float32) / 127.5 - 1
    labels = jnp.asarray(task.dataset.labels[:4])
    keys = jax.vmap(jax.random.key)(jnp.arange(4))
    loss, reconstruction, kl = task.loss(state.params, images, labels, keys)
    mean, log_var = (np.asarray(a, np.float64) for a in task.encoder.apply(
        {"params": state.params["e"]}, images, labels))
    np.testing.assert_allclose(np.asarray(kl), 0.5 * np.sum(
        mean ** 2 + np.exp(log_var) - 1 - log_var, -1), rtol=1e-5)
    z = mean + np.exp(0.5 * log_var) * np.stack(
        [np.asarray(jax.random.normal(k, (config.generator.z_dim,))) for k in keys])
    errors = [np.sum((np.asarray(task.g.apply({"params": state.params["g"]}, jnp.asarray(
        z, jnp.float32), labels, 2 * np.pi * t / config.sprites.turns)) - np.asarray(images)) ** 2,
        axis=(1, 2, 3)) for t in range(config.sprites.turns)]
    np.testing.assert_allclose(np.asarray(reconstruction),
                               np.min(errors, 0) / (2 * task.hparams["noise_std"] ** 2),
                               rtol=1e-4)
    np.testing.assert_allclose(np.asarray(loss), np.asarray(reconstruction + config.sprites.kl_weight * kl),
                               rtol=1e-6)


@pytest.mark.parametrize("hparams", [{"z_dim": 8, "num_classes": 0, "resolution": 32, "width": 8}])
def test_an_unconditional_sprites_generator_is_refused(hparams):
    with pytest.raises(ValueError, match="class-conditional"):
        generators.build("sprites", hparams)


def test_pixel_noise_std_measures_the_noise_of_shaded_backgrounds():
    rng = np.random.default_rng(1)
    t = np.linspace(-1, 1, 32)
    yy, xx = np.meshgrid(t, t, indexing="ij")
    base = 0.5 + 0.15 * xx[None, ..., None] - 0.1 * yy[None, ..., None]
    images = base + rng.uniform(-0.2, 0.2, (64, 1, 1, 3)) + rng.normal(0, 0.05, (64, 32, 32, 3))
    images[:, 10:20, 10:20] = 0.95  # a shape inside, away from the border
    images = np.clip(np.round(images * 255), 0, 255).astype(np.uint8)
    assert abs(sprites_task.pixel_noise_std(images) - 2 * 0.05) < 0.005  # in [-1, 1] units


def test_the_noise_part_of_the_latent_adds_pixel_noise():
    hparams = {"z_dim": 4, "num_classes": 2, "resolution": 8, "width": 8, "noise_std": 0.1}
    g = generators.build("sprites", hparams)
    assert g.z_dim == 4 + 8 * 8 * 3
    params = g.init(jax.random.key(0))
    z = jax.random.normal(jax.random.key(1), (3, g.z_dim))
    y = jnp.array([0, 1, 1])
    clean = np.asarray(g.apply(params, z.at[:, 4:].set(0.0), y))
    no_noise = generators.build("sprites", {**hparams, "noise_std": 0.0})
    assert no_noise.z_dim == 4
    np.testing.assert_allclose(clean, np.asarray(no_noise.apply(params, z[:, :4], y)), atol=1e-6)
    noisy = np.asarray(g.apply(params, z, y))
    want = np.clip(clean + 0.1 * np.asarray(z[:, 4:]).reshape(3, 8, 8, 3), -1, 1)
    np.testing.assert_allclose(noisy, want, atol=1e-6)
