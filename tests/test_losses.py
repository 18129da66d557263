"""Contrastive losses against NumPy loops and analytic values."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import losses


def _normalize(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def numpy_loss(z, positives_of, temperature):
    """−mean over positives of log softmax over all other rows, per anchor, by loops."""
    z = _normalize(np.asarray(z, np.float64))
    n = len(z)
    out = []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        logits = np.array([z[i] @ z[j] / temperature for j in others])
        log_norm = math.log(sum(math.exp(v) for v in logits))
        pos = [j for j in others if positives_of(i, j)]
        if not pos:
            out.append(0.0)
            continue
        out.append(-sum(z[i] @ z[p] / temperature - log_norm for p in pos) / len(pos))
    return np.mean(out)


@pytest.mark.parametrize("temperature,base", [(0.1, 0.1), (0.1, 0.07), (0.5, 0.5)])
def test_ntxent_matches_numpy_loop(temperature, base):
    rng = np.random.default_rng(0)
    n_inst, views = 6, 2
    z = rng.normal(size=(n_inst * views, 8))
    ids = np.repeat(np.arange(n_inst), views)
    got = losses.contrastive(jnp.asarray(z), jnp.asarray(ids), loss_name="ntxent",
                             temperature=temperature, base_temperature=base)
    want = (temperature / base) * numpy_loss(z, lambda i, j: ids[i] == ids[j], temperature)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_supcon_matches_numpy_loop():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(12, 5))
    ids = np.repeat(np.arange(6), 2)
    labels = np.array([0, 0, 1, 1, 0, 0, 2, 2, 1, 1, 3, 3])
    got = losses.contrastive(jnp.asarray(z), jnp.asarray(ids), loss_name="supcon",
                             temperature=0.1, base_temperature=0.07, labels=jnp.asarray(labels))
    want = (0.1 / 0.07) * numpy_loss(z, lambda i, j: labels[i] == labels[j], 0.1)
    np.testing.assert_allclose(float(got), want, rtol=1e-5)


def test_multipos_with_many_views_matches_numpy_loop():
    rng = np.random.default_rng(2)
    ids = np.repeat(np.arange(4), 3)  # three views per instance: two positives each
    z = rng.normal(size=(12, 6))
    got = losses.contrastive(jnp.asarray(z), jnp.asarray(ids), loss_name="multipos",
                             temperature=0.2, base_temperature=0.2)
    np.testing.assert_allclose(float(got), numpy_loss(z, lambda i, j: ids[i] == ids[j], 0.2),
                               rtol=1e-5)


def stablerep_numpy(z, ids, temperature):
    """StableRep's multi-positive loss as its paper writes it: the cross-entropy between the
    uniform target p over i's positives and q = softmax over j ≠ i, as whole matrices."""
    z = _normalize(np.asarray(z, np.float64))
    n = len(z)
    logits = z @ z.T / temperature
    logits[np.eye(n, dtype=bool)] = -np.inf
    q = np.exp(logits - logits.max(1, keepdims=True))
    q /= q.sum(1, keepdims=True)
    p = (ids[:, None] == ids[None, :]) & ~np.eye(n, dtype=bool)
    p = p / p.sum(1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.mean(-np.sum(np.where(p > 0, p * np.log(q), 0.0), 1))


@pytest.mark.parametrize("views", [2, 4])
def test_multipos_matches_stablerep_cross_entropy(views):
    rng = np.random.default_rng(5)
    ids = np.repeat(np.arange(5), views)
    z = rng.normal(size=(len(ids), 8))
    got = losses.contrastive(jnp.asarray(z), jnp.asarray(ids), loss_name="multipos",
                             temperature=0.1, base_temperature=0.1)
    np.testing.assert_allclose(float(got), stablerep_numpy(z, ids, 0.1), rtol=1e-5)


def clip_numpy(a, b, logit_scale):
    """CLIP's symmetric InfoNCE by loops: mean of the two cross-entropies, target = own pair."""
    a, b = _normalize(np.asarray(a, np.float64)), _normalize(np.asarray(b, np.float64))
    n = len(a)
    total = 0.0
    for i in range(n):
        row = [logit_scale * a[i] @ b[j] for j in range(n)]
        col = [logit_scale * b[i] @ a[j] for j in range(n)]
        total += -(row[i] - math.log(sum(math.exp(v) for v in row)))
        total += -(col[i] - math.log(sum(math.exp(v) for v in col)))
    return total / (2 * n)


@pytest.mark.parametrize("devices,logit_scale", [(1, 1 / 0.07), (2, 1 / 0.07), (4, 100.0)])
def test_clip_latent_matches_numpy_on_any_number_of_devices(devices, logit_scale):
    import jax
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=(8, 6)), rng.normal(size=(8, 6))
    norm = lambda x: losses.l2_normalize(jnp.asarray(x, jnp.float32))  # noqa: E731
    shard = lambda x: x.reshape((devices, -1) + x.shape[1:])  # noqa: E731
    # Each simulated device holds a slice of the rows; their shares sum to the batch loss.
    parts = jax.vmap(lambda x, y: losses.sharded_clip(x, y, jnp.float32(logit_scale), axis_name="d"),
                     axis_name="d")(shard(norm(a)), shard(norm(b)))
    np.testing.assert_allclose(float(parts.sum()), clip_numpy(a, b, logit_scale), rtol=1e-5)


def test_clip_latent_aligned_pairs_analytic():
    # Pairs are equal unit vectors, pairs orthogonal to each other: each cross-entropy is
    # log(1 + (n − 1)·e^{−s}) for logit scale s.
    import jax
    n, s = 6, 3.0
    e = jnp.eye(n, 8)
    got = jax.vmap(lambda x, y: losses.sharded_clip(x, y, jnp.float32(s), axis_name="d"),
                   axis_name="d")(e[None], e[None])
    np.testing.assert_allclose(float(got.sum()), math.log(1 + (n - 1) * math.exp(-s)), rtol=1e-4)


@pytest.mark.parametrize("n_inst,temperature", [(4, 0.1), (8, 0.5)])
def test_ntxent_aligned_views_analytic(n_inst, temperature):
    # Both views of an instance are the same unit vector; instances are orthogonal.
    # Each anchor: positive logit 1/τ, 2N−2 negatives at 0 → loss = log(1 + (2N−2)·e^{−1/τ}).
    z = np.repeat(np.eye(n_inst, 16), 2, axis=0)
    ids = np.repeat(np.arange(n_inst), 2)
    got = losses.contrastive(jnp.asarray(z), jnp.asarray(ids), loss_name="ntxent",
                             temperature=temperature, base_temperature=temperature)
    want = math.log(1 + (2 * n_inst - 2) * math.exp(-1 / temperature))
    np.testing.assert_allclose(float(got), want, rtol=1e-4, atol=1e-7)  # float32 log-softmax


@pytest.mark.parametrize("devices,loss_name", [(1, "ntxent"), (4, "ntxent"), (4, "supcon")])
def test_sharded_loss_shares_sum_to_the_numpy_loss(devices, loss_name):
    # Each simulated device scores its rows against the gathered batch; the shares of all
    # devices add up to the loss of the whole batch, computed by loops.
    import jax
    rng = np.random.default_rng(3)
    z = rng.normal(size=(16, 4))
    ids = np.repeat(np.arange(8), 2)
    labels = np.array([0, 0, 1, 1, 0, 0, 2, 2, 1, 1, 3, 3, 2, 2, 0, 0])
    shard = lambda x: jnp.asarray(x).reshape((devices, -1) + x.shape[1:])  # noqa: E731
    parts = jax.vmap(lambda z, ids, labels: losses.sharded_contrastive(
        losses.l2_normalize(z), ids, labels, axis_name="d", loss_name=loss_name,
        temperature=0.1, base_temperature=0.07), axis_name="d")(
        shard(z.astype(np.float32)), shard(ids), shard(labels))
    same = (lambda i, j: ids[i] == ids[j]) if loss_name == "ntxent" else \
        (lambda i, j: labels[i] == labels[j])
    want = (0.1 / 0.07) * numpy_loss(z, same, 0.1)
    np.testing.assert_allclose(float(parts.sum()), want, rtol=1e-5)


def test_hinge_losses():
    real, fake = jnp.array([2.0, 0.5]), jnp.array([-2.0, 0.5])
    assert float(losses.hinge_discriminator(real, fake)) == pytest.approx((0 + 0.5) / 2 + (0 + 1.5) / 2)
    assert float(losses.hinge_generator(fake)) == pytest.approx(0.75)


def test_projection_head_cannot_put_every_projection_on_one_direction():
    # SupCon collapsed with a head ending in Dense + bias: all projections on the bias
    # direction (every cosine → 1). The head ends in a bias-free Dense + BatchNorm, so in
    # training each projection dimension has zero mean over the batch, even for inputs
    # that are nearly one vector, and the projections spread over the sphere.
    import jax

    from models.encoders import ProjectionHead

    head = ProjectionHead(hidden=64, out=16, layers=2)
    x = 1.0 + 1e-3 * jax.random.normal(jax.random.key(0), (128, 32))
    variables = head.init(jax.random.key(1), x, train=False)
    z, _ = head.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(np.asarray(z).mean(0), 0.0, atol=1e-4)
    u = np.asarray(losses.l2_normalize(z))
    cosines = (u @ u.T)[~np.eye(len(u), dtype=bool)]
    assert abs(cosines.mean()) < 0.05 and cosines.min() < -0.5
    assert "bias" not in variables["params"]["Dense_1"]
    assert jnp.all(jnp.isfinite(z))
