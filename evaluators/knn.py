"""Weighted k-nearest-neighbour classifier on cosine similarity (InstDisc, solo-learn).

Each test point votes with its k most similar training points, each weighted by
exp(cos / T); the class with the largest total wins. Computed in tiles of test
points under jit, so memory stays O(tile · N_train).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from errors import check


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def _predict_tile(query, train, train_labels, k: int, num_classes: int, temperature):
    sims = query @ train.T
    top, idx = jax.lax.top_k(sims, k)
    weights = jnp.exp(top / temperature)
    votes = jax.nn.one_hot(train_labels[idx], num_classes) * weights[..., None]
    return jnp.argmax(votes.sum(1), -1)


def predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int, *,
            k: int = 200, temperature: float = 0.07, tile: int = 1024) -> np.ndarray:
    """Predicted classes of test_x (the features need not be normalised)."""
    normalize = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)  # noqa: E731
    train = jnp.asarray(normalize(np.asarray(train_x, np.float32)))
    test = normalize(np.asarray(test_x, np.float32))
    labels = jnp.asarray(train_y, jnp.int32)
    k = min(k, train.shape[0])
    out = [np.asarray(_predict_tile(jnp.asarray(test[i:i + tile]), train, labels, k, num_classes,
                                    temperature)) for i in range(0, len(test), tile)]
    return np.concatenate(out)


def evaluate(train_x, train_y, test_x, test_y, num_classes: int, *, k: int = 200,
             temperature: float = 0.07) -> dict:
    pred = predict(train_x, train_y, test_x, num_classes, k=k, temperature=temperature)
    return {"top1": 100 * float(np.mean(pred == np.asarray(test_y))), "k": k,
            "temperature": temperature}


def validate(section) -> None:
    """Config section eval.knn."""
    check(section.k > 0, "eval.knn.k", "must be > 0")
    check(section.temperature > 0, "eval.knn.temperature", "must be > 0")


def run(p) -> dict:
    """The evaluator `knn` on a registry.Probe, with config section eval.knn."""
    e = p.config.eval.knn
    return evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                    k=e.k, temperature=e.temperature)
