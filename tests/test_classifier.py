"""The supervised learner (task=classifier): ELR's per-example targets and one step's descent."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import tasks
from configs import classifier
from tasks.parallel import Runner


def _task(tfds_dir, loss):
    config = classifier.get_config("smoke")
    config.data.data_dir = tfds_dir
    config.classifier.loss = loss
    config.train.batch_size = 32
    return config, tasks.get(config)


def _batch_logits(task, state, batch, step=0):
    """The model's logits on step `step`'s views of `batch`, in training mode (batch statistics)."""
    @jax.jit  # compiled once per test, not run op by op
    def logits(params, stats, index, image):
        x = task.views(step, index, image)
        apply = lambda x: task.model.apply({"params": params, "batch_stats": stats}, x,  # noqa: E731
                                           train=True, mutable=["batch_stats"])[0]
        return jax.vmap(apply, axis_name="data")(x[None])[0]

    stats = {k: v for k, v in state.batch_stats.items() if k != "elr_targets"}
    return np.asarray(logits(state.params, stats, jnp.asarray(batch["index"]),
                             jnp.asarray(batch["image"])), np.float64)


def test_elr_targets_move_towards_the_predictions_of_the_rows_drawn(tfds_dir):
    config, task = _task(tfds_dir, "elr")
    runner = Runner(task.step, config.parallel, task.frozen)
    state = jax.device_get(task.init_state())
    batch = next(task.batches(0))
    logits = _batch_logits(task, state, batch)
    new, _ = runner(runner.put_state(state), runner.put_batch(batch))
    targets = np.asarray(jax.device_get(runner.get_state(new)).batch_stats["elr_targets"])
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p = np.clip(p / p.sum(-1, keepdims=True), 1e-4, 1 - 1e-4)
    want = 0.3 * p / p.sum(-1, keepdims=True)  # from the zero start: (1 − β)·p̂
    rows = batch["row"]
    assert len(set(rows.tolist())) == len(rows)
    np.testing.assert_allclose(targets[rows], want, rtol=1e-4, atol=1e-6)
    others = np.setdiff1d(np.arange(len(targets)), rows)
    np.testing.assert_array_equal(targets[others], 0.0)


def test_a_row_drawn_twice_moves_by_the_mean_of_its_two_updates(tfds_dir):
    # Two views of one example in a batch (a subset smaller than the batch): summing both
    # updates would leave the simplex; their mean stays on it.
    config, task = _task(tfds_dir, "elr")
    runner = Runner(task.step, config.parallel, task.frozen)
    state = jax.device_get(task.init_state())
    batch = dict(next(task.batches(0)))
    batch["row"] = np.asarray(batch["row"]).copy()
    batch["row"][1:4] = batch["row"][0]  # row 0 drawn 4 times, with 4 different images
    state.batch_stats["elr_targets"] = jnp.full_like(state.batch_stats["elr_targets"], 0.1)
    logits = _batch_logits(task, state, batch)
    new, _ = runner(runner.put_state(state), runner.put_batch(batch))
    targets = np.asarray(jax.device_get(runner.get_state(new)).batch_stats["elr_targets"])
    p = np.exp(logits - logits.max(-1, keepdims=True))
    p = np.clip(p / p.sum(-1, keepdims=True), 1e-4, 1 - 1e-4)
    updates = 0.7 * 0.1 + 0.3 * p / p.sum(-1, keepdims=True)
    np.testing.assert_allclose(targets[batch["row"][0]], updates[:4].mean(0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(targets[batch["row"][0]].sum(), 1.0, rtol=1e-5)


def test_a_step_lowers_the_loss_of_its_batch(tfds_dir):
    config, task = _task(tfds_dir, "ce")
    runner = Runner(task.step, config.parallel, task.frozen)
    state = jax.device_get(task.init_state())
    batch = next(task.batches(0))

    def loss(s):
        logits = _batch_logits(task, s, batch)
        log_p = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        return float(-np.mean(log_p[np.arange(len(logits)), batch["label"]]))

    new, metrics = runner(runner.put_state(state), runner.put_batch(batch))
    before, after = loss(state), loss(jax.device_get(runner.get_state(new)))
    assert abs(runner.metrics(metrics)["loss"] - before) < 1e-4 * before  # the loss it descended
    assert after < before - 1e-3, (before, after)


def test_mean_max_pooling_is_the_last_stages_mean_and_max():
    # model.pool=mean_max (the learner of the ELR Prune4ReL study): the convnet's features are
    # the global mean and the global max of its last stage's activations, which are taken
    # here from the last BatchNorm's captured output and a ReLU, independently of the pooling.
    from models.encoders import build_encoder
    x = jax.random.normal(jax.random.key(0), (3, 16, 16, 3))
    pooled = build_encoder("convnet", image_size=16, width=4, pool="mean_max")
    variables = pooled.init(jax.random.key(1), x, train=False)
    features, captured = pooled.apply(variables, x, train=False, capture_intermediates=True)
    last = np.maximum(np.asarray(captured["intermediates"]["BatchNorm_3"]["__call__"][0]), 0.0)
    assert features.shape == (3, 2 * 32)
    np.testing.assert_allclose(features[:, :32], last.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(features[:, 32:], last.max(axis=(1, 2)))
    mean_only = build_encoder("convnet", image_size=16, width=4).apply(variables, x, train=False)
    np.testing.assert_array_equal(mean_only, features[:, :32])  # the same parameters


def test_model_pool_is_checked_and_older_runs_read_as_mean_pooled():
    import pytest

    from configs import common
    from errors import ConfigError
    from tasks import validate
    config = classifier.get_config("smoke")
    for encoder, pool in (("convnet", "max"), ("resnet18", "mean_max")):
        config.model.encoder, config.model.pool = encoder, pool
        with pytest.raises(ConfigError, match="model.pool"):
            validate.validate(config)
    older = common.base()  # a run's config.json written before model.pool existed
    del older.model["pool"]
    assert common.upgrade(older).model.pool == "mean"
