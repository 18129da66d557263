"""The linear probe against scikit-learn's LogisticRegression on the same features.

scikit-learn minimises sum CE + |W|²/(2C) with an unpenalised intercept, which is
genviews' mean CE + l2/2·|W|² with C = 1 / (n · l2). Fitted to convergence, both
must give the same test top-1 for every strength of the probe's grid.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from evaluators import features, linear_probe

GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)


def _features(seed: int, n: int, d: int = 48, classes: int = 10):
    """Overlapping, correlated, badly scaled class clusters (about 67% separable): an
    ill-conditioned probe, where 100 L-BFGS steps stop 0.6 points short at l2 = 1e-6."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(99).normal(size=(classes, d)) * 0.3  # shared by the splits
    mix = np.random.default_rng(98).normal(size=(d, d)) * np.logspace(0, -2, d)
    y = np.arange(n) % classes
    x = (means[y] + rng.normal(size=(n, d))) @ mix
    return x.astype(np.float32), y


def _objective(x, y, w, b, l2):
    z = x.astype(np.float64) @ np.asarray(w, np.float64) + np.asarray(b, np.float64)
    z -= z.max(1, keepdims=True)
    ce = -(z[np.arange(len(y)), y] - np.log(np.exp(z).sum(1)))
    return ce.mean() + 0.5 * l2 * np.sum(np.asarray(w, np.float64) ** 2)


@pytest.fixture(scope="module")
def problem():
    x, y = _features(0, 4000)
    xt, yt = _features(1, 2000)
    x, xt = features.standardize(x, xt)
    w, b = linear_probe.fit(x, y, 10, np.asarray(GRID))
    return x, y, xt, yt, np.asarray(w), np.asarray(b)


@pytest.mark.parametrize("index", range(len(GRID)))
def test_probe_matches_scikit_learn_for_every_l2(problem, index):
    x, y, xt, yt, w, b = problem
    l2 = GRID[index]
    reference = LogisticRegression(C=1 / (len(y) * l2), tol=1e-10, max_iter=20_000).fit(x, y)
    ours = 100 * linear_probe.accuracy(w[index], b[index], xt, yt)
    theirs = 100 * reference.score(xt, yt)
    assert abs(ours - theirs) <= 0.2, (l2, ours, theirs)
    # The same optimum, not only the same accuracy.
    ours_obj = _objective(x, y, w[index], b[index], l2)
    theirs_obj = _objective(x, y, reference.coef_.T, reference.intercept_, l2)
    assert ours_obj <= theirs_obj + 1e-4 * abs(theirs_obj), (l2, ours_obj, theirs_obj)
