"""Fidelity metrics do not depend on a generator's output resolution.

Real images reach the encoder resized to the run's load size and centre-cropped
(Resize + CenterCrop); generated images must take the same path. Here "generated"
images are real test images, once at 1× and once upsampled to 2×, as a generator
of twice the resolution would draw them: every metric must agree, while cropping
the 2× images without resizing first (the old path) must not.

The features are the pixels themselves (pooled to 14×14), which see every change of
framing; a random ConvNet's pooled features are nearly blind to it. Tolerances: a
proportion near 0.9 over 400 samples has a standard error of 0.015; resampling to
2× and back moves the bounded metrics by ≤ 0.04 here, so 0.06 (4 standard errors);
density is unbounded (about 1 here) and gets 15%.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from data import datasets
from evaluators import features
from evaluators.fidelity import fidelity_metrics

N = 400


class Pixels:
    """An 'encoder' whose features are the image's pixels, pooled to 14×14."""

    def apply(self, variables, x, train=False):
        del variables, train
        n = x.shape[0]
        return jax.image.resize(x, (n, 14, 14, 3), "linear").reshape(n, -1)


@pytest.fixture(scope="module")
def setup(tfds_dir):
    data = datasets.load("genviews_shapes", "test", image_size=32, data_dir=tfds_dir,
                         max_examples=2 * N)
    encoder, variables = Pixels(), None
    real, fake = data.images[:N], data.images[N:]
    fake2x = np.asarray(jax.image.resize(fake.astype(np.float32), (N, 64, 64, 3), "linear"))
    fake2x = np.clip(np.round(fake2x), 0, 255).astype(np.uint8)
    return encoder, variables, real, fake, fake2x


def _metrics(encoder, variables, real, fake, load_size):
    def featurize(x):
        return features.extract(encoder, variables, x, 28, batch_size=200, load_size=load_size)
    return fidelity_metrics(featurize(real), featurize(fake), k=5)


def test_metrics_at_2x_resolution_match_1x(setup):
    encoder, variables, real, fake, fake2x = setup
    at_1x = _metrics(encoder, variables, real, fake, 32)
    at_2x = _metrics(encoder, variables, real, fake2x, 32)
    assert at_1x["sym_precision"] > 0.8 and at_1x["sym_recall"] > 0.8
    for key in at_1x:
        tolerance = 0.15 * at_1x[key] if key == "density" else 0.06
        assert abs(at_1x[key] - at_2x[key]) <= tolerance, (key, at_1x[key], at_2x[key])


def test_cropping_without_resizing_would_change_them(setup):
    encoder, variables, real, fake, fake2x = setup
    at_1x = _metrics(encoder, variables, real, fake, 32)
    # The old path: the central 28 pixels of the 64-pixel image, a 44% window.
    cropped = fake2x[:, 18:46, 18:46]
    old = fidelity_metrics(
        features.extract(encoder, variables, real, 28, batch_size=200, load_size=32),
        features.extract(encoder, variables, cropped, 28, batch_size=200, load_size=28), k=5)
    assert old["sym_precision"] < at_1x["sym_precision"] - 0.2
