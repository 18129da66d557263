"""ELR (Liu et al., NeurIPS 2020) against its formulas, written out in NumPy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import losses


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_elr_value_and_gradient_match_the_formulas():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.0, (5, 4))  # probabilities well inside [1e-4, 1 − 1e-4]
    labels = np.array([0, 3, 1, 1, 2])
    targets = _softmax(rng.normal(0, 1.0, (5, 4)))
    lam = 3.0
    p = _softmax(logits)
    inner = (targets * p).sum(-1)
    want = -np.log(p[np.arange(5), labels]) + lam * np.log(1 - inner)
    got = losses.elr(jnp.asarray(logits, jnp.float32), jnp.asarray(labels),
                     jnp.asarray(targets, jnp.float32), lam)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    # d/dz: the cross-entropy's p − onehot, plus λ · (−1 / (1 − ⟨t, p⟩)) · Jᵀt with the
    # softmax Jacobian J = diag(p) − p pᵀ, i.e. Jᵀt = p ⊙ t − p ⟨t, p⟩; t carries no gradient
    onehot = np.eye(4)[labels]
    jt = p * targets - p * inner[:, None]
    want_grad = (p - onehot) - lam * jt / (1 - inner)[:, None]
    got_grad = jax.grad(lambda z: losses.elr(z, jnp.asarray(labels), jnp.asarray(targets, jnp.float32),
                                             lam).sum())(jnp.asarray(logits, jnp.float32))
    np.testing.assert_allclose(np.asarray(got_grad), want_grad, rtol=1e-4, atol=1e-6)
    t_grad = jax.grad(lambda t: losses.elr(jnp.asarray(logits, jnp.float32), jnp.asarray(labels), t,
                                           lam).sum())(jnp.asarray(targets, jnp.float32))
    assert not np.asarray(t_grad).any()


def test_elr_targets_are_a_temporal_ensemble_of_normalised_clipped_predictions():
    rng = np.random.default_rng(1)
    probs = _softmax(rng.normal(0, 6.0, (4, 3)))  # some below 1e-4: clipped
    targets = _softmax(rng.normal(0, 1.0, (4, 3)))
    clipped = np.clip(probs, 1e-4, 1 - 1e-4)
    want = 0.7 * targets + 0.3 * clipped / clipped.sum(-1, keepdims=True)
    got = losses.elr_targets(jnp.asarray(targets, jnp.float32), jnp.asarray(probs, jnp.float32), 0.7)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(got).sum(-1), 1.0, rtol=1e-5)
