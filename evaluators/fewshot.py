"""Few-shot linear evaluation: closed-form ridge regression, as big_vision's fewshot_lsr.

For each number of shots k and each seed, k training examples per class are
drawn (the first k of a per-class permutation seeded by the seed, so the 5-shot
set contains the 1-shot set), their features are standardised with their own
mean and std, a constant feature of 100 stands in for an (almost unregularised)
bias, and one-hot targets in {-1, 1} are fit by ridge regression with a fixed
strength (big_vision: 2^10; nothing is tuned, so test is touched only once per
fit). Accuracy is the argmax of the regression on the test features; the result
is the mean and std over seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from errors import check
from evaluators.features import standardize

BIAS_CONSTANT = 100.0  # the constant feature: large, so its weight is almost unregularised


def _design(x: jax.Array) -> jax.Array:
    return jnp.pad(x, ((0, 0), (0, 1)), constant_values=BIAS_CONSTANT)


@jax.jit
def ridge_weights(x: jax.Array, targets: jax.Array, l2: jax.Array) -> jax.Array:
    """argmin_W |X W - Y|² + l2 |W|² in closed form, through the smaller Gram matrix.

    With N points and D features, (XᵀX + l2 I)⁻¹ XᵀY when N ≥ D, else the equal
    Xᵀ (XXᵀ + l2 I)⁻¹ Y: a few-shot set has far fewer points than features.
    """
    n, d = x.shape
    if n >= d:
        return jnp.linalg.solve(x.T @ x + l2 * jnp.eye(d, dtype=x.dtype), x.T @ targets)
    return x.T @ jnp.linalg.solve(x @ x.T + l2 * jnp.eye(n, dtype=x.dtype), targets)


def fit_predict(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, num_classes: int,
                l2: float) -> np.ndarray:
    """Predicted classes of test_x from the ridge regression fit on (train_x, train_y)."""
    x, test = standardize(jnp.asarray(train_x, jnp.float32), jnp.asarray(test_x, jnp.float32),
                          eps=1e-5)
    targets = 2.0 * jax.nn.one_hot(jnp.asarray(train_y), num_classes) - 1.0
    w = ridge_weights(_design(x), targets, jnp.float32(l2))
    return np.asarray(jnp.argmax(_design(test) @ w, -1))


def shot_indices(labels: np.ndarray, num_classes: int, shots: int, seed: int) -> np.ndarray:
    """Indices of `shots` examples of each class (fewer where a class has fewer), nested in shots."""
    rng = np.random.default_rng(seed)
    per_class = [rng.permutation(np.flatnonzero(labels == c)) for c in range(num_classes)]
    return np.concatenate([idx[:shots] for idx in per_class])


def evaluate(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
             num_classes: int, *, shots: Sequence[int] = (1, 5, 10, 25), seeds: int = 3,
             l2: float = 2.0 ** 10) -> dict:
    """Top-1 (%) of k-shot ridge regression, mean and std over `seeds`, for each k in `shots`."""
    train_y = np.asarray(train_y)
    test_y = np.asarray(test_y)
    result = {"l2": l2, "seeds": seeds, "protocol": "ridge regression on k shots per class "
              "(big_vision fewshot_lsr: standardised features, bias feature, targets in {-1, 1})"}
    for k in shots:
        accs = []
        for seed in range(seeds):
            idx = shot_indices(train_y, num_classes, k, seed)
            pred = fit_predict(train_x[idx], train_y[idx], test_x, num_classes, l2)
            accs.append(100 * float(np.mean(pred == test_y)))
        result[f"{k}shot"] = {"top1": float(np.mean(accs)), "std": float(np.std(accs)),
                              "per_seed": accs}
    return result


def validate(section) -> None:
    """Config section eval.fewshot."""
    check(len(section.shots) > 0 and all(k > 0 for k in section.shots), "eval.fewshot.shots",
          "must be a non-empty list of counts > 0")
    check(section.seeds > 0, "eval.fewshot.seeds", "must be > 0")
    check(section.l2 > 0, "eval.fewshot.l2", "must be > 0")


def run(p) -> dict:
    """The evaluator `fewshot` on a registry.Probe, with config section eval.fewshot."""
    e = p.config.eval.fewshot
    return evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                    shots=tuple(e.shots), seeds=e.seeds, l2=e.l2)
