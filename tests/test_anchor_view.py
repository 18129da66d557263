"""GenRep's view pairs (`views.anchor_view`): the anchor itself and one neighbour.

A standard normal truncated at ±2 has variance 1 − 4φ(2)/(Φ(2) − Φ(−2)) ≈ 0.7737, so
two views of one anchor sit at mean squared distance σ²·0.7737·d in GenRep's form
and 2σ²·0.7737·d when both are neighbours.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

from data import views

D, SIGMA, N = 64, 0.5, 4000


def _truncated_variance(bound: float = 2.0) -> float:
    phi = math.exp(-bound**2 / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(bound / math.sqrt(2))
    return 1 - 2 * bound * phi / mass


def _instances(anchor_view: bool, num_views: int = 2, kind: str = "gaussian"):
    spec = views.ViewSpec(kind=kind, sigma=SIGMA, num_views=num_views, anchor_view=anchor_view)
    keys = jax.random.split(jax.random.key(3), N)
    return jax.jit(lambda k: views.instances(k, spec, z_dim=D, num_classes=10))(keys)


def test_first_view_is_the_anchor():
    inst = _instances(True, num_views=3)
    np.testing.assert_array_equal(np.asarray(inst["views"][:, 0]), np.asarray(inst["anchor"]))
    assert not np.allclose(inst["views"][:, 1], inst["anchor"])
    assert not np.allclose(inst["views"][:, 1], inst["views"][:, 2])


@pytest.mark.parametrize("anchor_view,factor", [(True, 1.0), (False, 2.0)])
def test_distance_between_the_two_views(anchor_view, factor):
    inst = _instances(anchor_view)
    v = np.asarray(inst["views"], np.float64)
    got = np.mean(np.sum((v[:, 0] - v[:, 1]) ** 2, -1))
    want = factor * SIGMA**2 * _truncated_variance() * D
    assert abs(got - want) < 0.03 * want, (got, want)


def test_anchor_view_needs_two_views():
    spec = views.ViewSpec(kind="gaussian", num_views=1, anchor_view=True)
    with pytest.raises(ValueError, match="views.num_views"):
        views.check(spec, 10)
