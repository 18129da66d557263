"""Tests of evaluators.fidelity against the `prdc` package and a brute-force reference.

References:
- `prdc` (Naeem et al., ICML 2020, pip package `prdc`): precision, recall, density,
  coverage. Its conventions, read from prdc/prdc.py (v0.2), agree with our spec:
  radii are `get_kth_value(distances, k + 1)` on the full self-distance matrix, i.e.
  the (k+1)-th smallest distance counting the point itself at 0, which is the k-th
  nearest neighbour excluding the point itself; every membership test is a strict
  `<`; density is (1/k) * mean_j sum_i 1[d(x_i, y_j) < r_i]; coverage is
  1[min_j d(x_i, y_j) < r_i]. prdc has no c_precision nor symmetric metrics, so
  those are checked against the brute-force reference below only.
- `_brute_force`: an explicit float64 N x M distance matrix from exact differences,
  written independently of the tiled |a|^2 + |b|^2 - 2ab code under test.
- The hypersphere experiment of Khayatkhoei & AbdAlmageed (ICML 2023), for which
  the asymmetry of precision and recall in high dimensions is known analytically.

prdc computes distances in float64 (sklearn), the code under test in float32; the
fractions are only compared exactly on inputs that have no near-ties (checked), where
no rounding difference can flip a strict `<`.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.fidelity import fidelity_metrics

prdc = pytest.importorskip("prdc")

KEYS = (
    "precision",
    "recall",
    "density",
    "coverage",
    "c_precision",
    "sym_precision",
    "sym_recall",
)


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances from exact differences, float64, shape (len(a), len(b))."""
    diff = a[:, None, :].astype(np.float64) - b[None, :, :].astype(np.float64)
    return np.sqrt(np.sum(diff * diff, axis=-1))


def _kth_radii(a: np.ndarray, k: int) -> np.ndarray:
    """k-th nearest neighbour distance within `a`, the point itself excluded by index."""
    d = _pairwise(a, a)
    np.fill_diagonal(d, np.inf)
    return np.sort(d, axis=1)[:, k - 1]


def _brute_force(x: np.ndarray, y: np.ndarray, k: int) -> dict[str, float]:
    """The spec written literally with a full distance matrix."""
    rx, ry = _kth_radii(x, k), _kth_radii(y, k)
    dxy = _pairwise(x, y)  # (N, M)
    y_in_x_ball = dxy < rx[:, None]  # [i, j]: y_j inside the ball of x_i
    x_in_y_ball = dxy < ry[None, :]  # [i, j]: x_i inside the ball of y_j
    out = {
        "precision": y_in_x_ball.any(axis=0).mean(),
        "recall": x_in_y_ball.any(axis=1).mean(),
        "density": y_in_x_ball.sum() / (k * y.shape[0]),
        "coverage": y_in_x_ball.any(axis=1).mean(),
        "c_precision": x_in_y_ball.any(axis=0).mean(),
    }
    out["sym_precision"] = min(out["precision"], out["c_precision"])
    out["sym_recall"] = min(out["recall"], out["coverage"])
    return {key: float(v) for key, v in out.items()}


def _min_relative_margin(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Smallest |d - r| / r over every comparison the metrics make (float64)."""
    rx, ry = _kth_radii(x, k), _kth_radii(y, k)
    dxy = _pairwise(x, y)
    return float(
        min(
            np.min(np.abs(dxy - rx[:, None]) / rx[:, None]),
            np.min(np.abs(dxy - ry[None, :]) / ry[None, :]),
        )
    )


def _sphere(rng: np.random.Generator, n: int, d: int, radius: float) -> np.ndarray:
    z = rng.standard_normal((n, d))
    return radius * z / np.linalg.norm(z, axis=1, keepdims=True)


def _gaussian_pair(seed: int, n: int = 300, m: int = 400, d: int = 16):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    # Shifted and rescaled so that none of the metrics is trivially 0 or 1.
    y = (0.4 + 1.2 * rng.standard_normal((m, d))).astype(np.float32)
    return x, y


# float32 rounding moves a distance by about 1e-7 of itself on these inputs; exact
# comparisons use seeds whose every |d - r| / r exceeds this (asserted, not assumed).
MIN_MARGIN = 4e-6


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_prdc(k, capsys):
    x, y = _gaussian_pair(seed=0)
    assert _min_relative_margin(x, y, k) > MIN_MARGIN
    ref = prdc.compute_prdc(real_features=x, fake_features=y, nearest_k=k)
    capsys.readouterr()  # prdc prints the set sizes
    got = fidelity_metrics(x, y, k=k, tile_rows=64, tile_cols=96)
    for key in ("precision", "recall", "coverage"):
        assert got[key] == float(ref[key]), key
        assert 0.0 < got[key] < 1.0, key  # the inputs are not degenerate
    # Same integer count; only the order of the final division by k and M differs.
    assert got["density"] == pytest.approx(float(ref["density"]), rel=1e-12, abs=0)


@pytest.mark.parametrize(
    "seed, k, tile_rows, tile_cols",
    [(3, 5, 64, 96), (1, 2, 128, 37), (2, 7, 1000, 1000), (0, 1, 300, 400)],
)
def test_matches_brute_force(seed, k, tile_rows, tile_cols):
    # 300 = 4 * 64 + 44 = 2 * 128 + 44; 400 = 4 * 96 + 16 = 10 * 37 + 30: ragged last
    # tiles in both passes; 1000 exceeds the data, 300 and 400 divide exactly.
    x, y = _gaussian_pair(seed)
    assert _min_relative_margin(x, y, k) > MIN_MARGIN
    got = fidelity_metrics(x, y, k=k, tile_rows=tile_rows, tile_cols=tile_cols)
    want = _brute_force(x, y, k)
    assert set(got) == set(KEYS)
    for key in KEYS:
        assert isinstance(got[key], float), key
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=0), key


def test_result_does_not_depend_on_tiles_or_a_common_offset():
    x, y = _gaussian_pair(seed=0)
    assert _min_relative_margin(x, y, k=3) > MIN_MARGIN
    base = fidelity_metrics(x, y, k=3, tile_rows=50, tile_cols=70)
    assert fidelity_metrics(x, y, k=3) == base
    # A large common offset would ruin |a|^2 + |b|^2 - 2ab in float32 without centring
    # (the offset is added in float64, so the inputs still hold the same distances).
    x64, y64 = x.astype(np.float64) + 1000.0, y.astype(np.float64) + 1000.0
    assert fidelity_metrics(x64, y64, k=3, tile_rows=50, tile_cols=70) == base


def test_duplicates_are_neighbours_and_balls_are_open():
    # Each real point appears twice: with k = 1 its radius is 0 (the twin, not itself),
    # and an open ball of radius 0 holds nothing, even a generated copy of the centre.
    rng = np.random.default_rng(0)
    base = rng.standard_normal((40, 8)).astype(np.float32)
    x = np.concatenate([base, base])
    y = np.concatenate([base[:10], rng.standard_normal((50, 8)).astype(np.float32)])
    got = fidelity_metrics(x, y, k=1, tile_rows=16, tile_cols=24)
    want = _brute_force(x, y, k=1)
    assert want["precision"] == 0.0 and want["coverage"] == 0.0 and want["density"] == 0.0
    for key in KEYS:
        assert got[key] == pytest.approx(want[key], rel=1e-12, abs=0), key


def test_hypersphere_asymmetry():
    # Real: uniform on the unit sphere in d = 128; generated: on spheres of radius
    # 0.8, 1.0, 1.2. Measured with n = 2000 (seeds 0, 1): at 0.8 precision = 1.0 and
    # recall <= 0.002, at 1.2 precision <= 0.009 and recall = 1.0, the symmetric
    # metrics <= 0.009 on both, and >= 0.96 at radius 1.
    rng = np.random.default_rng(0)
    n, d = 2000, 128
    x = _sphere(rng, n, d, 1.0)
    m = {r: fidelity_metrics(x, _sphere(rng, n, d, r), k=5) for r in (0.8, 1.0, 1.2)}

    assert m[0.8]["precision"] > 0.98 and m[0.8]["recall"] < 0.05
    assert m[1.2]["precision"] < 0.05 and m[1.2]["recall"] > 0.98
    for r in (0.8, 1.2):
        assert m[r]["sym_precision"] < 0.05, r
        assert m[r]["sym_recall"] < 0.05, r
    for key in KEYS:
        if key != "density":
            assert m[1.0][key] > 0.9, key
    assert 0.8 < m[1.0]["density"] < 1.2


def test_swapping_sets_swaps_metrics():
    x, y = _gaussian_pair(seed=5)
    xy = fidelity_metrics(x, y, k=3, tile_rows=64, tile_cols=96)
    yx = fidelity_metrics(y, x, k=3, tile_rows=64, tile_cols=96)
    assert yx["precision"] == xy["recall"]
    assert yx["recall"] == xy["precision"]
    assert yx["c_precision"] == xy["coverage"]
    assert yx["coverage"] == xy["c_precision"]
    assert yx["sym_precision"] == xy["sym_recall"]
    assert yx["sym_recall"] == xy["sym_precision"]


@pytest.mark.parametrize(
    "real, fake, k, match",
    [
        (np.zeros(10), np.zeros((10, 2)), 2, r"real must be a 2-D"),
        (np.zeros((10, 2)), np.zeros((10, 2, 1)), 2, r"fake must be a 2-D"),
        (np.zeros((10, 2)), np.zeros((10, 3)), 2, r"different feature sizes: 2 vs 3"),
        (np.zeros((10, 0)), np.zeros((10, 0)), 2, r"real has no feature columns"),
        (np.full((10, 2), np.nan), np.zeros((10, 2)), 2, r"real contains 20 non-finite"),
        (np.zeros((10, 2)), np.array([[np.inf, 0.0]] * 10), 2, r"fake contains 10 non-finite"),
        (np.zeros((10, 2), complex), np.zeros((10, 2)), 2, r"real must hold real numbers"),
        (np.zeros((3, 2)), np.zeros((10, 2)), 3, r"k=3 must be smaller than .* real \(3\)"),
        (np.zeros((10, 2)), np.zeros((4, 2)), 5, r"k=5 must be smaller than .* fake \(4\)"),
        (np.zeros((10, 2)), np.zeros((10, 2)), 0, r"k must be >= 1"),
        (np.zeros((10, 2)), np.zeros((10, 2)), 2.0, r"k must be an integer"),
    ],
)
def test_bad_inputs_raise(real, fake, k, match):
    with pytest.raises(ValueError, match=match):
        fidelity_metrics(real, fake, k=k)


def test_bad_tile_size_raises():
    x = np.zeros((10, 2))
    with pytest.raises(ValueError, match="tile_rows must be a positive integer"):
        fidelity_metrics(x, x, k=2, tile_rows=0)
