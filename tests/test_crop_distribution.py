"""RandomResizedCrop's boxes follow torchvision's distribution.

The reference is torchvision's `RandomResizedCrop.get_params`, written out here as a
plain Python loop (torchvision itself does not install beside the test extras'
torch): up to 10 tries of (area, log-aspect), the first rounded box that fits,
else a centre crop. A two-sample KS test compares genviews' boxes with it.
"""

from __future__ import annotations

import math
import random

import jax
import numpy as np
import pytest
from scipy import stats

from data import pixel

SCALE = (0.2, 1.0)
RATIO = (3 / 4, 4 / 3)
N = 4000


def torchvision_box(rng: random.Random, h: int, w: int, scale=SCALE, ratio=RATIO):
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(*log_ratio))
        cw = int(round(math.sqrt(target_area * aspect)))
        ch = int(round(math.sqrt(target_area / aspect)))
        if 0 < cw <= w and 0 < ch <= h:
            return rng.randint(0, h - ch), rng.randint(0, w - cw), ch, cw
    in_ratio = w / h
    if in_ratio < min(ratio):
        cw, ch = w, int(round(w / min(ratio)))
    elif in_ratio > max(ratio):
        ch, cw = h, int(round(h * max(ratio)))
    else:
        cw, ch = w, h
    return (h - ch) // 2, (w - cw) // 2, ch, cw


@pytest.mark.parametrize("h,w", [(32, 32), (24, 40)])
def test_boxes_follow_torchvision(h, w):
    keys = jax.random.split(jax.random.key(0), N)
    ours = np.asarray(jax.jit(jax.vmap(lambda k: jax.numpy.stack(
        pixel.crop_box(k, h, w, SCALE, RATIO))))(keys))
    rng = random.Random(0)
    ref = np.asarray([torchvision_box(rng, h, w) for _ in range(N)], np.float64)
    for name, a, b in [("area", ours[:, 2] * ours[:, 3] / (h * w), ref[:, 2] * ref[:, 3] / (h * w)),
                       ("aspect", ours[:, 3] / ours[:, 2], ref[:, 3] / ref[:, 2])]:
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    # Every box lies in the image, in whole pixels.
    top, left, ch, cw = ours.T
    assert (top >= 0).all() and (left >= 0).all() and (top + ch <= h).all() and (left + cw <= w).all()
    assert np.array_equal(ours, np.round(ours))
    # Offsets are uniform over the positions that fit: the mean is centred.
    assert abs(np.mean(top + ch / 2) - h / 2) < 0.05 * h


def test_clipping_boxes_would_be_detected():
    """The old rule (one draw, clipped to the image) has a larger mean area; the KS test
    above tells the two apart."""
    rng = np.random.default_rng(0)
    area = rng.uniform(*SCALE, N)
    aspect = np.exp(rng.uniform(math.log(RATIO[0]), math.log(RATIO[1]), N))
    clipped = np.minimum(np.sqrt(area * aspect), 1) * np.minimum(np.sqrt(area / aspect), 1)
    r = random.Random(1)
    ref = np.asarray([torchvision_box(r, 32, 32) for _ in range(N)], np.float64)
    assert stats.ks_2samp(clipped, ref[:, 2] * ref[:, 3] / 1024).pvalue < 1e-3


@pytest.mark.parametrize("h,w", [(120, 80), (60, 300)])
def test_host_boxes_follow_torchvision(h, w):
    """views.crop_from=original draws its boxes on the host with NumPy: the same distribution,
    on originals of any shape (60×300 often takes torchvision's centre-crop fallback)."""
    ours = np.asarray([pixel.host_crop_box(np.random.default_rng([7, i]), h, w, SCALE, RATIO)
                       for i in range(N)], np.float64)
    rng = random.Random(0)
    ref = np.asarray([torchvision_box(rng, h, w) for _ in range(N)], np.float64)
    for name, a, b in [("area", ours[:, 2] * ours[:, 3] / (h * w), ref[:, 2] * ref[:, 3] / (h * w)),
                       ("aspect", ours[:, 3] / ours[:, 2], ref[:, 3] / ref[:, 2]),
                       ("top", ours[:, 0] / h, ref[:, 0] / h), ("left", ours[:, 1] / w, ref[:, 1] / w)]:
        assert stats.ks_2samp(a, b).pvalue > 1e-3, name
    top, left, ch, cw = ours.T
    assert (top >= 0).all() and (left >= 0).all() and (top + ch <= h).all() and (left + cw <= w).all()


def test_host_crops_are_the_box_resized_and_keyed_by_position():
    # Each pixel holds its own row (red) and column (green): a view's pixel must hold the
    # image coordinates of its sample point in its box, top + (i + ½)·crop_h/16 − ½ (a
    # resampling filter reproduces a linear ramp away from the box's edges). The boxes are
    # those of host_crop_box keyed by (seed, position, view), whose law is tested above.
    rows, cols = np.mgrid[0:90, 0:140]
    image = np.stack([rows, cols, np.zeros_like(rows)], -1).astype(np.uint8)
    crop = pixel.HostCrop(num_views=3, out_size=16, scale=SCALE, ratio=RATIO, seed=5)
    views = crop.views(image, position=41)
    assert views.shape == (3, 16, 16, 3) and views.dtype == np.uint8
    inner = slice(2, -2)  # the filter's support is cut at the box's edges
    for v in range(3):
        top, left, ch, cw = pixel.host_crop_box(np.random.default_rng([5, 41, v]), 90, 140,
                                                SCALE, RATIO)
        centre = (np.arange(16) + 0.5) / 16
        want_rows, want_cols = top + centre * ch - 0.5, left + centre * cw - 0.5
        np.testing.assert_allclose(views[v, inner, :, 0].astype(float),
                                   np.broadcast_to(want_rows[inner, None], (12, 16)), atol=1.0)
        np.testing.assert_allclose(views[v, :, inner, 1].astype(float),
                                   np.broadcast_to(want_cols[None, inner], (16, 12)), atol=1.0)
    assert not np.array_equal(views[0], views[1])  # each view its own box
    np.testing.assert_array_equal(crop.views(image, 41), views)  # a function of the position
    assert not np.array_equal(crop.views(image, 42), views)
