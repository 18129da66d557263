"""Forward-Forward: layer-local objectives, the logistic loss on goodness, negatives."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage

import tasks
from configs import forward_forward
from models.encoders import FFConvNet, embed_label
from tasks import forward_forward as ff
from tasks.parallel import Runner

STEPS = 15  # steps on one batch of positives (negatives are drawn anew at each step)


def _layer_loss(params, model, pos, neg, layers):
    """The sum of the losses of `layers` (indices) on positives `pos` and negatives `neg`."""
    acts = model.apply({"params": params}, jnp.concatenate([pos, neg]), per_layer=True)
    g = ff.goodness(acts)
    b = pos.shape[0]
    losses = ff.layer_losses(g[:, :b], g[:, b:], 2.0, b)
    return sum(losses[i] for i in layers)


def test_a_layers_gradient_does_not_depend_on_later_layers():
    model = FFConvNet(widths=(4, 8, 8, 16))
    key = jax.random.key(0)
    pos, neg = jax.random.normal(key, (2, 6, 16, 16, 3))
    params = model.init(jax.random.key(1), pos)["params"]
    names = [f"Conv_{i}" for i in range(4)]
    grad = jax.jit(jax.grad(_layer_loss), static_argnums=(1, 4))
    total = grad(params, model, pos, neg, (0, 1, 2, 3))
    for i, name in enumerate(names):
        own = grad(params, model, pos, neg, (i,))[name]  # from layer i's loss alone
        np.testing.assert_array_equal(np.asarray(total[name]["kernel"]), np.asarray(own["kernel"]))
        assert np.abs(np.asarray(own["kernel"])).max() > 0  # it does learn from its own loss
        for later in names[i + 1:]:  # other values of a later layer: the same gradient here
            moved = dict(params)
            moved[later] = jax.tree.map(lambda p: 3.0 * p + 0.5, params[later])
            again = grad(moved, model, pos, neg, (0, 1, 2, 3))[name]
            np.testing.assert_array_equal(np.asarray(again["kernel"]), np.asarray(total[name]["kernel"]))


def test_labels_are_written_into_the_top_rows_first_pixels():
    x = jnp.zeros((2, 8, 8, 3))
    labels = jnp.array([[1.0, -1.0, -1.0], [-1.0, -1.0, 1.0]])
    got = np.asarray(embed_label(x, labels))
    np.testing.assert_array_equal(got[:, 0, :3, :], np.repeat(np.asarray(labels)[..., None], 3, -1))
    assert not got[:, 1:].any() and not got[:, 0, 3:].any()  # nothing else
    # features take the neutral label 1/C: the same features whatever label the input had
    model = FFConvNet(widths=(4, 8), label_slots=3)
    images = jax.random.uniform(jax.random.key(0), (2, 8, 8, 3), minval=-1, maxval=1)
    params = model.init(jax.random.key(1), images)
    np.testing.assert_array_equal(np.asarray(model.apply(params, embed_label(images, labels))),
                                  np.asarray(model.apply(params, images)))


def test_layer_losses_and_goodness_are_the_formulas():
    rng = np.random.default_rng(0)
    acts = [rng.normal(size=(6, 4, 4, 3)).astype(np.float32), rng.normal(size=(6, 5)).astype(np.float32)]
    g = np.asarray(ff.goodness([jnp.asarray(a) for a in acts]))
    want = np.stack([np.mean(a.reshape(6, -1).astype(np.float64) ** 2, 1) for a in acts])
    np.testing.assert_allclose(g, want, rtol=1e-6)
    g_pos, g_neg = rng.uniform(0, 4, (2, 3)), rng.uniform(0, 4, (2, 3))
    got = np.asarray(ff.layer_losses(jnp.asarray(g_pos), jnp.asarray(g_neg), 2.0, 3))
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731
    want = (softplus(2.0 - g_pos).sum(1) + softplus(g_neg - 2.0).sum(1)) / 3
    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_the_hybrid_mask_is_blurred_random_bits_thresholded_at_a_half():
    key = jax.random.key(3)
    got = np.asarray(ff.hybrid_mask(key, 32))[..., 0]
    bits = np.asarray(jax.random.bernoulli(key, 0.5, (32, 32))).astype(np.float64)
    for _ in range(6):
        for axis in (0, 1):
            bits = scipy.ndimage.convolve1d(bits, [0.25, 0.5, 0.25], axis=axis, mode="nearest")
    decided = np.abs(bits - 0.5) > 1e-5
    np.testing.assert_array_equal(got[decided], (bits > 0.5)[decided])
    assert 0.2 < got.mean() < 0.8
    assert np.mean(got[:, 1:] == got[:, :-1]) > 0.8  # regions, not salt and pepper


@pytest.mark.parametrize("negative", ["generated", "hybrid", "wrong_label"])
def test_positive_goodness_rises_above_negative_goodness(negative, tfds_dir):
    # A few steps on one batch: in every layer, the positives' mean goodness ends above the
    # negatives' and further above it than at the start.
    config = forward_forward.get_config("smoke")
    config.data.data_dir = tfds_dir
    config.ff.negative = negative
    config.train.batch_size = 32
    config.train.steps = STEPS  # the learning-rate schedule's length
    task = tasks.get(config)
    runner = Runner(task.step, config.parallel, task.frozen)
    state = runner.put_state(task.init_state())
    batch = next(task.batches(0))
    pairs = task.pairs(0, batch["index"], batch.get("image"), batch.get("label"))

    def gaps(state):  # each layer's mean goodness of positives minus negatives
        params = jax.device_get(runner.get_state(state).params["encoder"])
        acts = task.encoder.apply({"params": params}, jnp.concatenate(pairs), per_layer=True)
        g = np.asarray(ff.goodness(acts))
        return g[:, :32].mean(1) - g[:, 32:].mean(1)

    before = gaps(state)
    device_batch = runner.put_batch(batch)
    for _ in range(STEPS):
        state, _ = runner(state, device_batch)
    after = gaps(state)
    assert np.all(after > before) and np.all(after > 0), (before, after)


@pytest.mark.parametrize("key, value", [("ff.threshold", 0.0), ("ff.threshold", float("nan")),
                                        ("ff.positive", "noise"), ("ff.negative", "noise")])
def test_bad_ff_keys_are_one_config_error_naming_the_key(key, value):
    from errors import ConfigError
    from tasks.validate import validate

    config = forward_forward.get_config("smoke")
    section, name = key.split(".")
    config[section][name] = value
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate(config, 1, 1)
