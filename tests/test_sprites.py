"""The sprite generator and its VAE training, against independent references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

from configs import generator as generator_config
from data import shapes
from models import generators
from models.generators import sprites
from tasks import sprites as sprites_task
from tasks.parallel import Runner
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


def _render_loop(template, angle, scale, centre, fg, bg, gradient, resolution, k, noise):
    """One image, pixel by pixel and supersample by supersample, from the definitions; the
    pixel noise is the background's (the shape's colour is flat, as in data/shapes.py)."""
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
            back = bg + gradient[0] * xc + gradient[1] * yc + noise[i, j]
            image[i, j] = cover * fg + (1 - cover) * back
    return np.clip(image, -1, 1)


def test_render_matches_a_pixel_loop():
    rng = np.random.default_rng(0)
    template = rng.normal(0, 4, (9, 9)).astype(np.float32)
    angle, scale, centre = 0.7, 0.6, np.array([0.2, -0.3])
    fg, bg, gradient = np.array([0.9, -0.5, 0.1]), np.array([-0.2, 0.4, 0.3]), np.array([0.3, -0.2])
    noise = rng.normal(0, 0.1, (8, 8, 3)).astype(np.float32)
    args = (jnp.asarray(template[None]), jnp.array([[np.cos(angle), np.sin(angle)]]),
            jnp.array([scale]), jnp.asarray(centre[None]), jnp.asarray(fg[None]),
            jnp.asarray(bg[None]), jnp.asarray(gradient[None]), 8, 2)
    for pixel_noise in (np.zeros_like(noise), noise):  # noise: on the background only
        got = sprites.render(*args, noise=jnp.asarray(pixel_noise[None]))
        want = _render_loop(template, angle, scale, centre, fg, bg, gradient, 8, 2, pixel_noise)
        np.testing.assert_allclose(np.asarray(got[0]), want, atol=2e-5)
    np.testing.assert_array_equal(np.asarray(sprites.render(*args)),
                                  np.asarray(sprites.render(*args, noise=jnp.zeros((1, 8, 8, 3)))))


def test_turn_offset_rotates_the_pose():
    g = sprites.SpriteGenerator(z_dim=4, num_classes=3, resolution=16, width=8)
    z = jax.random.normal(jax.random.key(0), (2, 4))
    y = jnp.array([0, 2])
    params = g.init(jax.random.key(1), z, y)
    params["params"]["templates"] = jax.random.normal(jax.random.key(2), (3, 48, 48)) * 4
    full_turn = g.apply(params, z, y, 2 * np.pi)
    np.testing.assert_allclose(np.asarray(full_turn), np.asarray(g.apply(params, z, y)), atol=1e-5)
    assert np.abs(np.asarray(g.apply(params, z, y, 1.0) - g.apply(params, z, y))).max() > 0.05


def test_coverage_reads_a_soft_disc_off_a_shaded_noisy_background():
    rng = np.random.default_rng(0)
    t = (np.arange(32) + 0.5) / 16 - 1
    yy, xx = np.meshgrid(t, t, indexing="ij")
    # the disc's coverage, 4×4 supersampled: soft at its edge
    fine = (np.arange(128) + 0.5) / 64 - 1
    fy, fx = np.meshgrid(fine, fine, indexing="ij")
    disc = (np.hypot(fx - 0.2, fy + 0.1) < 0.4).reshape(32, 4, 32, 4).mean((1, 3))
    background = 0.3 + 0.2 * xx[..., None] + rng.normal(0, 0.04, (32, 32, 3))
    image = disc[..., None] * np.array([0.9, 0.8, 0.2]) + (1 - disc[..., None]) * background
    image = np.clip(np.round(image * 255), 0, 255).astype(np.uint8)
    cover = sprites_task.coverage(image)
    assert np.abs(cover - disc).mean() < 0.03
    assert np.abs(cover - disc)[(disc > 0) & (disc < 1)].mean() < 0.1  # the soft edge too


def _boundary_radii(template: np.ndarray) -> np.ndarray:
    """Distances from the centre of mass of a template's inside (logit > 0) to its boundary."""
    inside = template > 0
    rows, cols = np.nonzero(inside)
    cy, cx = rows.mean(), cols.mean()
    edge = inside & ~scipy.ndimage.binary_erosion(inside)
    er, ec = np.nonzero(edge)
    return np.hypot(er - cy, ec - cx)


def test_congealing_recovers_the_sharp_corners_of_turned_squares():
    # Squares and circles drawn by the dataset itself, at random rotations, scales and places.
    rng = np.random.default_rng(0)
    labels = np.array([1] * 40 + [0] * 40)
    images = shapes.render(labels, rng)
    templates = sprites_task.congealed_templates(images, labels, 3, 48)
    square, circle = _boundary_radii(templates[1]), _boundary_radii(templates[0])
    # corner over side midpoint: √2 for a square (an average over poses would round it)
    assert 1.3 < square.max() / square.min() < 1.5
    assert circle.max() / circle.min() < 1.15
    # a quarter turn leaves the square in place
    assert ((templates[1] > 0) == (np.rot90(templates[1]) > 0)).mean() > 0.97
    # the first image's farthest point lies at TEMPLATE_RADIUS of the frame's half-side
    assert abs(circle.max() / 23.5 - sprites_task.TEMPLATE_RADIUS) < 0.1
    np.testing.assert_array_equal(templates[2], np.asarray(sprites.disc_template(48)))  # no image of class 2


def test_the_latent_prior_is_each_class_gaussian_of_the_posterior_means():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, -0.3], [0.0, -0.3, 0.5]])
    means = np.concatenate([rng.multivariate_normal([1.0, -2.0, 0.5], cov, 4000),
                            rng.normal(0, 1, (2, 3))])
    labels = np.array([0] * 4000 + [1] * 2)
    mean, scale = sprites_task.fit_latent_prior(means, labels, 3, jitter=0.0)
    np.testing.assert_allclose(mean[0], [1.0, -2.0, 0.5], atol=0.06)
    np.testing.assert_allclose(scale[0] @ scale[0].T, cov, atol=0.1)
    assert np.allclose(np.triu(scale[0], 1), 0)  # a Cholesky factor
    for c in (1, 2):  # too few examples (2 < d + 1), or none: N(0, I)
        np.testing.assert_array_equal(mean[c], 0)
        np.testing.assert_array_equal(scale[c], np.eye(3))


def test_the_generator_maps_z_through_its_class_prior():
    g = sprites.SpriteGenerator(z_dim=3, num_classes=2, resolution=8, width=8)
    z = jax.random.normal(jax.random.key(0), (4, 3))
    y = jnp.array([0, 1, 1, 0])
    params = g.init(jax.random.key(1), z, y)
    fitted = jax.tree.map(lambda a: a, params)
    mean = np.array([[0.5, -1.0, 2.0], [0.0, 0.3, -0.2]], np.float32)
    scale = np.stack([np.tril(np.full((3, 3), 0.4)) + np.eye(3), 2 * np.eye(3)]).astype(np.float32)
    fitted["params"]["latent_mean"], fitted["params"]["latent_scale"] = mean, scale
    moved = np.stack([mean[c] + scale[c] @ np.asarray(zi) for zi, c in zip(z, [0, 1, 1, 0], strict=True)])
    np.testing.assert_allclose(np.asarray(g.apply(fitted, z, y)),
                               np.asarray(g.apply(params, jnp.asarray(moved), y)), atol=1e-5)


@pytest.fixture(scope="module")
def smoke_task(tfds_dir):
    """The smoke sprites task (its templates congealed from the test dataset) and its initial
    state on the host."""
    config = generator_config.get_config("smoke")
    config.data.data_dir = tfds_dir
    task = SpritesTask(config)
    return task, jax.device_get(task.init_state())


def test_vae_loss_terms_match_their_formulas(smoke_task):
    task, state = smoke_task
    config = task.config
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


def test_a_training_step_moves_neither_the_templates_nor_the_prior(smoke_task):
    task, state = smoke_task  # a host copy: the runner donates the device copy it makes
    runner = Runner(task.step, frozen=task.frozen)
    stepped, _ = runner(runner.put_state(state), runner.put_batch(next(task.batches(0))))
    new = runner.get_state(stepped)
    for name in sprites_task.FIXED:
        np.testing.assert_array_equal(np.asarray(new.params["g"][name]), np.asarray(state.params["g"][name]))
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
                         new.params["g"]["rotation"], state.params["g"]["rotation"])
    assert max(jax.tree.leaves(moved)) > 0


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


def test_the_noise_part_of_the_latent_adds_pixel_noise_to_the_background():
    hparams = {"z_dim": 4, "num_classes": 2, "resolution": 8, "width": 8, "noise_std": 0.1}
    g = generators.build("sprites", hparams)
    assert g.z_dim == 4 + 1 + 8 * 8 * 3
    params = g.init(jax.random.key(0))
    z = jax.random.normal(jax.random.key(1), (3, g.z_dim))
    y = jnp.array([0, 1, 1])
    clean = np.asarray(g.apply(params, z.at[:, 5:].set(0.0), y))
    no_noise = generators.build("sprites", {**hparams, "noise_std": 0.0})
    assert no_noise.z_dim == 5
    np.testing.assert_allclose(clean, np.asarray(no_noise.apply(params, z[:, :5], y)), atol=1e-6)
    # noisy − clean = (1 − coverage) · 0.1 · noise, one coverage per pixel for every channel
    # and every noise draw: 1 on the background, 0 inside the shape (a flat colour)
    ratios, kept = [], np.ones(clean.shape, bool)
    for key in (2, 3):
        noise = jax.random.normal(jax.random.key(key), (3, 8 * 8 * 3))
        noisy = np.asarray(g.apply(params, z.at[:, 5:].set(noise), y))
        noise = np.asarray(noise).reshape(3, 8, 8, 3)
        kept &= (np.abs(noisy) < 1) & (np.abs(clean) < 1) & (np.abs(noise) > 0.2)
        ratios.append((noisy - clean) / (0.1 * noise))
    assert kept.mean() > 0.5
    np.testing.assert_allclose(ratios[0][kept], ratios[1][kept], atol=1e-4)
    spread = np.where(kept, ratios[0], np.nan)
    assert np.nanmax(np.nanmax(spread, -1) - np.nanmin(spread, -1)) < 1e-4
    assert np.nanmin(spread) > -1e-4 and np.nanmax(spread) < 1 + 1e-4
    assert np.nanmin(spread) < 0.1 and np.nanmax(spread) > 0.99  # inside the shape, outside


def test_the_turn_latent_turns_the_sprite_by_its_normal_quantile():
    hparams = {"z_dim": 4, "num_classes": 2, "resolution": 16, "width": 8, "noise_std": 0.0}
    g = generators.build("sprites", hparams)
    params = g.init(jax.random.key(0))
    params["params"]["templates"] = jax.random.normal(jax.random.key(2), (2, 48, 48)) * 4
    module = sprites.SpriteGenerator(4, 2, 16, 8)
    z = jax.random.normal(jax.random.key(1), (2, 4))
    y = jnp.array([0, 1])
    for t, offset in ((0.0, np.pi), (-9.0, 0.0), (0.6744897501960817, 1.5 * np.pi)):  # Φ = ½, 0, ¾
        got = g.apply(params, jnp.concatenate([z, jnp.full((2, 1), t)], 1), y)
        np.testing.assert_allclose(np.asarray(got), np.asarray(module.apply(params, z, y, offset)),
                                   atol=1e-4)
