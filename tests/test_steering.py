"""Steering walks: the pixel edits (checked with image moments), the masked MSE, walk
training, `views.latent=steer`, and learned walks of the quickstart's generator."""

from __future__ import annotations

import functools
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import tasks
from configs import genviews, steering
from data import edits, views
from data import walks as walks_lib
from tasks import loop
from tasks.parallel import Runner

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART_GENERATOR = os.path.join(ROOT, "tests", "assets", "quickstart_generator")


# ------------------------------------------------------------------ pixel edits

def _moments(weight: np.ndarray) -> tuple[float, float, float, float]:
    """(cx, cy, size, orientation) of a non-negative (H, W) weight map, in pixels, with
    x right and y *up* (so a positive orientation is counter-clockwise on screen)."""
    h, w = weight.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    x, y = cols, (h - 1) - rows
    m = weight.sum()
    cx, cy = (weight * x).sum() / m, (weight * y).sum() / m
    mu20 = (weight * (x - cx) ** 2).sum() / m
    mu02 = (weight * (y - cy) ** 2).sum() / m
    mu11 = (weight * (x - cx) * (y - cy)).sum() / m
    return cx, cy, math.sqrt(mu20 + mu02), 0.5 * math.atan2(2 * mu11, mu20 - mu02)


def _ellipse(size=48, centre=(20.0, 26.0), sigmas=(4.0, 2.0), angle=0.35) -> np.ndarray:
    """An elongated Gaussian blob (x right, y up), in [-1, 1] on every channel."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = cols - centre[0], (size - 1 - rows) - centre[1]
    u = math.cos(angle) * dx + math.sin(angle) * dy
    v = -math.sin(angle) * dx + math.cos(angle) * dy
    blob = np.exp(-0.5 * ((u / sigmas[0]) ** 2 + (v / sigmas[1]) ** 2))
    return np.repeat((2 * blob - 1)[..., None], 3, -1).astype(np.float32)


def _edit_moments(name, image, alpha):
    out, mask = edits.edit(name, jnp.asarray(image), jnp.asarray([alpha], jnp.float32))
    return _moments(np.asarray(out)[..., 0] + 1), np.asarray(mask)[..., 0]


def test_zoom_scales_size_and_centroid_about_the_centre():
    image = _ellipse()
    cx, cy, size, angle = _moments(image[..., 0] + 1)
    c = (48 - 1) / 2
    for scale in (1.5, 0.7):
        (zx, zy, zsize, zangle), _ = _edit_moments("zoom", image, math.log(scale))
        np.testing.assert_allclose(zsize, scale * size, rtol=0.02)
        np.testing.assert_allclose([zx, zy], [c + scale * (cx - c), c + scale * (cy - c)], atol=0.1)
        np.testing.assert_allclose(zangle, angle, atol=0.01)


def test_shifts_move_the_centroid_right_and_down():
    image = _ellipse()
    cx, cy, size, _ = _moments(image[..., 0] + 1)
    (sx, sy, ssize, _), mask = _edit_moments("shift_x", image, 0.125)  # 6 px right
    np.testing.assert_allclose([sx, sy, ssize], [cx + 6, cy, size], atol=0.02)
    assert mask[:, :6].sum() == 0 and mask[:, 6:].min() == 1  # columns brought in from outside
    (sx, sy, ssize, _), mask = _edit_moments("shift_y", image, -0.125)  # 6 px up
    np.testing.assert_allclose([sx, sy, ssize], [cx, cy + 6, size], atol=0.02)
    assert mask[-6:].sum() == 0 and mask[:-6].min() == 1


def test_rotation_turns_orientation_and_centroid_counter_clockwise():
    image = _ellipse()
    cx, cy, size, angle = _moments(image[..., 0] + 1)
    c = (48 - 1) / 2
    theta = 0.4
    (rx, ry, rsize, rangle), mask = _edit_moments("rotate", image, theta)
    np.testing.assert_allclose(rangle, angle + theta, atol=0.01)
    want_x = c + math.cos(theta) * (cx - c) - math.sin(theta) * (cy - c)
    want_y = c + math.sin(theta) * (cx - c) + math.cos(theta) * (cy - c)
    np.testing.assert_allclose([rx, ry, rsize], [want_x, want_y, size], atol=0.1)
    assert mask[0, 0] == 0 and mask[24, 24] == 1  # corners come from outside


def test_colour_edit_adds_per_channel_and_clips():
    image = np.random.default_rng(0).uniform(-1, 1, (8, 8, 3)).astype(np.float32)
    alpha = np.array([0.5, -0.25, 0.0], np.float32)
    out, mask = edits.edit("color", jnp.asarray(image), jnp.asarray(alpha))
    np.testing.assert_allclose(out, np.clip(image + alpha, -1, 1), atol=1e-6)
    assert np.asarray(mask).min() == 1


def test_masked_mse_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 6, 5, 3)).astype(np.float32)
    mask = (rng.uniform(size=(6, 5, 1)) > 0.3).astype(np.float32)
    num, den = edits.masked_mse(jnp.asarray(a), jnp.asarray(b), jnp.asarray(mask))
    want = sum((a[i, j, k] - b[i, j, k]) ** 2 for i in range(6) for j in range(5) for k in range(3)
               if mask[i, j, 0])
    np.testing.assert_allclose(float(num), want, rtol=1e-5)
    assert float(den) == 3 * mask.sum()


# ------------------------------------------------------------------ steered views

def test_steered_views_move_along_each_walk_within_its_range():
    z_dim = 12
    eye = np.eye(z_dim, dtype=np.float32)  # walk i = coordinates: steps are read back exactly
    directions = {"color": eye[0:3], "zoom": eye[3:4], "shift_x": eye[4:5], "shift_y": eye[5:6],
                  "rotate": eye[6:7]}
    ranges = walks_lib.StepRanges(color=0.5, zoom=4.0, shift=0.4, rotate=30.0)
    walks = walks_lib.Walks({k: jnp.asarray(v) for k, v in directions.items()}, ranges)
    keys = jax.random.split(jax.random.key(0), 500)
    spec = views.ViewSpec(kind="steer", num_views=3, walks=walks)
    s = jax.vmap(lambda k: views.sample(k, spec, z_dim=z_dim, num_classes=10))(keys)
    steps = np.asarray(s["views"] - s["anchor"][:, None]).reshape(-1, z_dim)
    bounds = [0.5] * 3 + [math.log(4.0), 0.4, 0.4, math.radians(30)]
    for i, bound in enumerate(bounds):
        assert np.abs(steps[:, i]).max() <= bound + 1e-6
        assert np.abs(steps[:, i]).max() > 0.98 * bound  # uniform over the whole range
    assert np.abs(steps[:, 7:]).max() < 1e-6
    assert np.abs(steps[0::3, :7] - steps[1::3, :7]).min() > 0  # each view its own steps


@pytest.fixture(scope="module")
def trained_walks(tmp_path_factory):
    """A smoke steering run (tiny random G) and the fixed held-out anchors it is tested on."""
    workdir = str(tmp_path_factory.mktemp("walks") / "run")
    config = steering.get_config("smoke")
    config.train.steps = 30
    config.train.log_every = 10
    config.train.ckpt_every = 30
    loop.train(config, workdir)
    return config, workdir


def test_walk_training_lowers_the_masked_mse(trained_walks):
    config, workdir = trained_walks
    task = tasks.get(config)
    learned = walks_lib.load(workdir, task.names, task.generator.z_dim)
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(77), i))(jnp.arange(256))
    z, y, steps = task.anchors(keys)
    before = task.losses(walks_lib.zeros(task.generator.z_dim, task.names), z, y, steps)
    after = task.losses(learned.directions, z, y, steps)
    total_before = sum(float(before[f"{n}_mse"]) for n in task.names)
    total_after = sum(float(after[f"{n}_mse"]) for n in task.names)
    print(f"held-out masked MSE summed over walks: {total_before:.4f} -> {total_after:.4f}")
    # A tiny random G barely responds to z, so the drop is small (~0.4%, nearly all colour);
    # on the quickstart's GAN the colour walk removes ~40% of the no-walk error.
    assert total_after < total_before
    assert float(after["color_mse"]) < float(before["color_mse"])
    for name in task.names:  # zero directions are exactly "no walk"
        np.testing.assert_allclose(before[f"{name}_mse"], before[f"{name}_mse_no_walk"], rtol=1e-6)
    with open(os.path.join(workdir, "walks.json")) as f:
        meta = json.load(f)
    assert meta["ranges"]["shift"] == config.steer.shift and meta["generator"] == "random"
    assert os.path.exists(os.path.join(workdir, "walks.png"))


# One training run on trained walks without pixel views; random walks with and without
# pixel views are in tests/test_view_types.py (the views of the train step).
@pytest.mark.parametrize("walks,pixel", [("trained", "none")])
def test_genviews_smoke_runs_on_steered_views(trained_walks, walks, pixel, tmp_path):
    config = genviews.get_config("smoke")
    config.views.latent = "steer"
    config.views.pixel = pixel
    if walks == "trained":  # the same tiny random G as the steering smoke run
        config.generator.init = "random"
        config.generator.width = 8
        config.generator.z_dim = 16
        config.views.walks = trained_walks[1]
    config.train.steps = 2
    config.train.views_png = True
    loop.train(config, str(tmp_path))
    assert os.path.exists(tmp_path / "views.png")
    task = tasks.get(config)
    grid = task.view_grid(2)  # anchor | views: steered views differ from each other
    assert np.abs(grid[:, 1] - grid[:, 2]).mean() > 1e-3


# ------------------------------------------------------------------ a trained generator

SIZE_THRESHOLD = 0.8  # above the 95th percentile (0.70) of border pixels' distance to their median


def _object_moments(images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sqrt area, cx, cy) in pixels of each image's object: the pixels whose colour lies
    further than SIZE_THRESHOLD from the median colour of the image's border."""
    border = np.concatenate([images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]], 1)
    dist = np.linalg.norm(images - np.median(border, 1)[:, None, None], axis=-1)
    mask = (dist > SIZE_THRESHOLD).astype(np.float64)
    rows, cols = np.mgrid[0:images.shape[1], 0:images.shape[2]]
    area = mask.sum((1, 2)) + 1e-9
    return np.sqrt(area), (mask * cols).sum((1, 2)) / area, (mask * rows).sum((1, 2)) / area


@pytest.mark.skipif(not os.path.exists(os.path.join(QUICKSTART_GENERATOR, "generator.json")),
                    reason="tests/assets/quickstart_generator/ (the quickstart's trained generator) "
                           "is not committed yet")
def test_learned_walks_zoom_and_shift_the_quickstart_generators_objects():
    config = steering.get_config()
    config.generator.checkpoint = QUICKSTART_GENERATOR
    config.steer.walks = ("zoom", "shift_x", "shift_y")
    config.train.batch_size = 32
    config.train.steps = 100
    config.optim.lr = 0.03  # a short run: larger Adam steps than the 1e-3 of a full run
    task = tasks.get(config)
    runner = Runner(task.step, frozen=task.frozen)
    state = runner.put_state(task.init_state())
    batches = task.batches(0)
    for _ in range(config.train.steps):
        state, _ = runner(state, runner.put_batch(next(batches)))
    directions = jax.device_get(runner.get_state(state).params)

    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(99), i))(jnp.arange(256))
    z, y, _ = task.anchors(keys)
    render = jax.jit(lambda z: task.render(z, y))
    base = render(z)
    # (walk, moment index: 0 size, 1 cx, 2 cy (rows, down), step at either end of the range)
    for name, index in (("zoom", 0), ("shift_x", 1), ("shift_y", 2)):
        bound = task.ranges.bound(name)
        walked = [_object_moments(np.asarray(render(z + a * directions[name][0])))[index]
                  for a in (-bound, bound)]
        edit = jax.vmap(functools.partial(edits.edit, name), in_axes=(0, None))
        edited = [_object_moments(np.asarray(edit(base, jnp.asarray([a]))[0]))[index]
                  for a in (-bound, bound)]
        change, edit_change = walked[1] - walked[0], edited[1] - edited[0]
        t = change.mean() / change.std() * math.sqrt(len(change))
        print(f"{name}: walk moves the moment by {change.mean():+.2f} px (t = {t:.1f}, "
              f"{(change > 0).mean():.0%} of anchors), the pixel edit by {edit_change.mean():+.2f} px")
        assert edit_change.mean() > 0  # the measure sees the edit itself go the intended way
        assert change.mean() > 0 and t > 2.5, (name, change.mean(), t)
