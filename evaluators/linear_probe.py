"""Linear probe: multinomial logistic regression on frozen features.

The L2 strength is chosen on a validation split carved from the training
features, never on test; the probe is then refit on all training features with
that strength and tested once. The fit is full-batch L-BFGS (optax) under jit,
run to a gradient tolerance (`TOL`) rather than for a fixed number of steps: it
agrees with scikit-learn's LogisticRegression on the same features
(tests/test_probe_reference.py).

The strengths of the grid are fit one after another (`lax.map`), each until its own
tolerance: fitting them at once (`vmap`) ran every strength for as many iterations as
the slowest needed, and XLA:CPU ran the batched iteration 2.6× slower than the six
single ones together (the quickstart's 10,000 × 256 features: 166 against 65 ms per
iteration; its probe 118 s against 26 s, same choice of L2, top-1 56.57 against 56.58%:
the same optimum to the fit's tolerance, not bit for bit).

Memory, at ImageNet-1k shapes too: the feature rows are split over this process's
devices (padded rows weigh nothing); one strength's fit holds N/D·(d + 3·C)·4 bytes per
device: ImageNet-1k (N = 1.28M, d = 2048, C = 1000) on 8 devices, about 3.2 GB.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from errors import check
from evaluators import features
from evaluators.features import local_rows

# The fit stops when the largest gradient entry of the objective is below TOL (the
# stopping rule of scikit-learn's lbfgs, whose default is 1e-4; tighter here, so that
# small L2 strengths reach their optimum) or after `steps` L-BFGS iterations.
TOL = 1e-5


def fit(features: jax.Array, labels: jax.Array, num_classes: int, l2: jax.Array,
        steps: int = 1000, tol: float = TOL) -> tuple[jax.Array, jax.Array]:
    """Weights (d, C) and bias (C,) minimising mean cross-entropy + l2/2·|W|², for each l2.

    `l2` is a vector; the leading axis of the results runs over it. Each fit runs
    L-BFGS until max |gradient| ≤ `tol`, or for at most `steps` iterations, one strength
    after another. The rows are split over the local devices (module doc).
    """
    x, y = np.asarray(features, np.float32), np.asarray(labels, np.int32)
    l2 = jnp.asarray(l2, jnp.float32)
    devices = jax.local_devices()
    weights = None
    pad = -len(x) % len(devices)
    if pad:  # equal shares per device; the padding rows weigh nothing in the mean
        weights = np.concatenate([np.ones(len(x), np.float32), np.zeros(pad, np.float32)])
        x, y = np.pad(x, ((0, pad), (0, 0))), np.pad(y, (0, pad))
    if len(devices) > 1:
        rows = local_rows()  # (`features` is the argument here)
        x, y = jax.device_put(x, rows), jax.device_put(y, rows)
        weights = None if weights is None else jax.device_put(weights, rows)
    return _fit(x, y, weights, l2, num_classes, steps, tol)


# The data are arguments, not closed-over values: XLA would otherwise embed them as
# constants, recompile for every call and spend seconds constant-folding them.
@functools.partial(jax.jit, static_argnames=("num_classes", "steps", "tol"))
def _fit(x: jax.Array, y: jax.Array, weights: jax.Array | None, l2: jax.Array, num_classes: int,
         steps: int, tol: float):
    d = x.shape[1]

    def solve(lam):
        def objective(params):
            logits = x @ params["w"] + params["b"]
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, y)
            ce = ce.mean() if weights is None else jnp.sum(ce * weights) / jnp.sum(weights)
            return ce + 0.5 * lam * jnp.sum(params["w"] ** 2)

        opt = optax.lbfgs()
        value_and_grad = optax.value_and_grad_from_state(objective)
        params = {"w": jnp.zeros((d, num_classes)), "b": jnp.zeros((num_classes,))}

        def running(carry):
            _, state, i, grad_max = carry
            return (i < steps) & (grad_max > tol)

        def body(carry):
            params, state, i, _ = carry
            value, grad = value_and_grad(params, state=state)
            updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                        value_fn=objective)
            params = optax.apply_updates(params, updates)
            grad_max = jnp.max(jnp.abs(optax.tree_utils.tree_get(state, "grad")["w"]))
            grad_max = jnp.maximum(grad_max, jnp.max(jnp.abs(
                optax.tree_utils.tree_get(state, "grad")["b"])))
            return params, state, i + 1, grad_max

        carry = (params, opt.init(params), jnp.zeros((), jnp.int32), jnp.asarray(jnp.inf))
        params, _, _, _ = jax.lax.while_loop(running, body, carry)
        return params["w"], params["b"]

    return jax.lax.map(solve, l2)


def accuracy(w: jax.Array, b: jax.Array, features: np.ndarray, labels: np.ndarray) -> float:
    pred = np.argmax(np.asarray(features) @ np.asarray(w) + np.asarray(b), -1)
    return float(np.mean(pred == np.asarray(labels)))


def split_rows(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (fit, val) of a random validation part of n training rows."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return order[n_val:], order[:n_val]


def choose_l2(train_x: np.ndarray, train_y: np.ndarray, num_classes: int, l2_grid: Sequence[float],
              *, val_fraction: float = 0.1, steps: int = 1000, seed: int = 0) -> tuple[float, dict]:
    """The L2 strength of best validation top-1, and every strength's validation top-1 (%).

    Sees only training rows: a validation part is carved from them, the probe is
    fit on the rest for every strength, and scored on the validation part.
    """
    fit_rows, val = split_rows(len(train_y), val_fraction, seed)
    xf, xv = features.standardize(train_x[fit_rows], train_x[val])
    w, b = fit(xf, train_y[fit_rows], num_classes, np.asarray(l2_grid), steps)
    val_acc = [100 * accuracy(w[i], b[i], xv, train_y[val]) for i in range(len(l2_grid))]
    best = int(np.argmax(val_acc))
    return float(l2_grid[best]), {str(lam): a for lam, a in zip(l2_grid, val_acc, strict=True)}


def evaluate(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
             num_classes: int, l2_grid: Sequence[float], *, val_fraction: float = 0.1,
             steps: int = 1000, seed: int = 0) -> dict:
    """Chooses L2 on a validation part of train, refits on all of train, tests once.

    Returns top-1 accuracies in percent: `top1` (test, once), `val_top1` per strength,
    and the chosen `l2`.
    """
    l2, val_top1 = choose_l2(train_x, train_y, num_classes, l2_grid, val_fraction=val_fraction,
                             steps=steps, seed=seed)
    x_all, x_test = features.standardize(train_x, test_x)
    w, b = fit(x_all, train_y, num_classes, np.asarray([l2]), steps)
    return {"top1": 100 * accuracy(w[0], b[0], x_test, test_y), "l2": l2, "val_top1": val_top1,
            "protocol": "logistic regression (L-BFGS), L2 chosen on a validation split of train"}


def validate(section) -> None:
    """Config section eval.linear_probe."""
    check(0 < section.val_fraction < 1, "eval.linear_probe.val_fraction", "must be in (0, 1)")
    check(all(v > 0 for v in section.l2_grid), "eval.linear_probe.l2_grid", "strengths must be > 0")


def run(p) -> dict:
    """The evaluator `linear_probe` on a registry.Probe, with config section eval.linear_probe."""
    e = p.config.eval.linear_probe
    return evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                    list(e.l2_grid), val_fraction=e.val_fraction, steps=e.steps, seed=p.config.seed)
