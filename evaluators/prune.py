"""Prunes a labelled dataset to a budget with Prune4ReL on an encoder's features.

    python -m evaluators.prune --encoder ENCODER_DIR --dataset NAME|DATASET_DIR --budget 0.3 \
        [--gain self|full] [--noise 0.2 --noise_seed 0] [--method random --seed 0] --out OUT

`--dataset` is a TFDS name (genviews_shapes, cifar10, ...) or the directory of a
prepared TFDS dataset (DIR/NAME/VERSION: an exported generated dataset, whose
labels are the classes the generator was asked for). The encoder's frozen
features (standardised) are the embeddings; the confidence of each example is the
max softmax of a linear probe (softmax regression, `--l2`) fit on those features
and the example's (possibly noisy) labels; `evaluators.coreset.prune4rel` then
selects `--budget` examples (a fraction in (0, 1] or a count). `--noise` first
replaces that fraction of the labels by symmetric noise (for studies);
`--method random` keeps a uniform random subset of the same size instead (the
baseline; `--method random --budget 1` is the whole set, with the same noise).

OUT receives `indices.npy` (the selected rows of the split, in the order chosen),
`labels.npy` (the labels used, noisy if --noise) and `summary.json` (the subset
format, data/subset.py). Training on them: `--config.data.source=...
--config.data.subset=OUT` (a real split or an export: the selected rows, with
these labels).
"""

from __future__ import annotations

import os
import sys
import time

import jax
import numpy as np

from data import subset
from errors import UserError
from evaluators import coreset, features, linear_probe


def symmetric_noise(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> np.ndarray:
    """Labels with exactly round(rate·n) of them, chosen uniformly, replaced by another class.

    The new class is uniform over the C − 1 wrong ones, so the noise rate is exactly `rate`
    (symmetric noise that may redraw the true class would make it rate·(C − 1)/C).
    """
    if not 0 <= rate < 1:
        raise UserError(f"--noise must be in [0, 1), got {rate}")
    if num_classes < 2 and rate > 0:
        raise UserError("symmetric label noise needs at least 2 classes")
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    noisy = labels.copy()
    flip = rng.choice(len(labels), size=int(round(rate * len(labels))), replace=False)
    shift = rng.integers(1, num_classes, size=len(flip))  # 1..C-1: never the true class
    noisy[flip] = (labels[flip] + shift) % num_classes
    return noisy


def budget_count(budget: float, n: int) -> int:
    """A budget as a count: a fraction in (0, 1] of n, or a whole count in [1, n]."""
    if not budget > 0:
        raise UserError(f"--budget must be > 0 (a fraction in (0, 1] or a count), got {budget}")
    count = int(round(budget * n)) if budget <= 1 else budget
    if count != int(count) or count > n:
        raise UserError(f"--budget={budget:g} is not a fraction in (0, 1] nor a whole count "
                        f"≤ n = {n}")
    return max(int(count), 1)


def random_subset(n: int, count: int, seed: int) -> np.ndarray:
    """A uniform random subset of `count` of n rows (the baseline of every selection), in a
    seeded order: the same rows for one seed in the command and in the studies."""
    return np.random.default_rng([seed, 1]).permutation(n)[:count]


def embeddings(x: np.ndarray) -> np.ndarray:
    """The encoder's features standardised (float32): the probe's inputs and the embeddings.

    Centring matters for the embeddings: post-ReLU features all point into one
    orthant, where every cosine is high and the τ threshold would keep everything.
    """
    return features.standardize(np.asarray(x, np.float32))[0]


def probe_confidence(features: np.ndarray, labels: np.ndarray, num_classes: int, *, l2: float = 1e-3,
                     steps: int = 100) -> np.ndarray:
    """Max softmax probability of a linear probe fit on all of (features, labels)."""
    w, b = linear_probe.fit(features, labels, num_classes, np.asarray([l2]), steps)
    logits = np.asarray(features) @ np.asarray(w[0]) + np.asarray(b[0])
    return np.asarray(jax.nn.softmax(logits, -1).max(-1), np.float64)


def select(features: np.ndarray, labels: np.ndarray, num_classes: int, budget: int, *,
           gain: str = "self", tau: float = 0.95, eta: float = 1.0, balance: bool = True,
           l2: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(Prune4ReL's indices in the order chosen, every example's confidence) on standardised features."""
    x = embeddings(features)
    confidence = probe_confidence(x, labels, num_classes, l2=l2)
    indices = coreset.prune4rel(x, confidence, labels, budget, tau=tau, eta=eta, balance=balance,
                                gain=gain)
    return np.asarray(indices), confidence


def encoder_features(encoder_dir: str, dataset: str, split: str, *, data_dir: str | None = None,
                     max_examples: int = 0):
    """(features (n, d), the dataset) of `split` of `dataset` under the encoder of a run."""
    run = features.load(encoder_dir)
    data = run.dataset(dataset, split, data_dir=data_dir, max_examples=max_examples)
    return run.extract(data), data


def run(encoder: str, dataset: str, budget: float, out: str, *, split: str = "train",
        data_dir: str | None = None, max_examples: int = 0, gain: str = "self", tau: float = 0.95,
        eta: float = 1.0, balance: bool = True, noise: float = 0.0, noise_seed: int = 0,
        l2: float = 1e-3, method: str = "prune4rel", seed: int = 0) -> dict:
    """The command: prunes `split` of `dataset` and writes OUT (see the module docstring)."""
    if gain not in ("self", "full"):
        raise UserError(f"--gain must be self or full, got {gain!r}")
    if method not in ("prune4rel", "random"):
        raise UserError(f"--method must be prune4rel or random, got {method!r}")
    if not os.path.isdir(encoder):
        raise UserError(f"--encoder {encoder}: no such run directory")
    start = time.time()
    x, data = encoder_features(encoder, dataset, split, data_dir=data_dir, max_examples=max_examples)
    count = budget_count(budget, len(data))
    labels = symmetric_noise(data.labels, noise, data.num_classes, noise_seed) if noise else data.labels
    try:
        if method == "random":
            indices = random_subset(len(data), count, seed)
            confidence = probe_confidence(embeddings(x), labels, data.num_classes, l2=l2)
        else:
            indices, confidence = select(x, labels, data.num_classes, count, gain=gain, tau=tau,
                                         eta=eta, balance=balance, l2=l2)
    except ValueError as e:  # prune4rel's checks (non-finite features, tau, eta): one line
        raise UserError(str(e)) from None
    summary = {
        "encoder": os.path.abspath(encoder), "split": split, "n": len(data),
        "dataset": os.path.abspath(dataset) if os.path.isdir(dataset) else dataset,
        "budget": count, "method": method, "seed": seed, "gain": gain, "tau": tau, "eta": eta,
        "balance": balance, "l2": l2,
        "noise": noise, "noise_seed": noise_seed,
        "confidence": "max softmax of a linear probe on the encoder's standardised features",
        "mean_confidence_selected": float(confidence[indices].mean()),
        "mean_confidence_all": float(confidence.mean()),
        "per_class": np.bincount(labels[indices], minlength=data.num_classes).tolist(),
        "wall_s": time.time() - start,
    }
    if noise:
        summary["clean_fraction_selected"] = float(np.mean(labels[indices] == data.labels[indices]))
        summary["clean_fraction_all"] = float(np.mean(labels == data.labels))
    subset.write(out, indices, labels, summary)
    return summary


def main(argv=None) -> None:
    import argparse

    p = argparse.ArgumentParser(prog="python -m evaluators.prune", description=__doc__.split("\n")[0])
    p.add_argument("--encoder", required=True, help="run directory of a contrastive encoder")
    p.add_argument("--dataset", required=True, help="TFDS name or prepared TFDS dataset directory")
    p.add_argument("--budget", required=True, type=float, help="fraction in (0, 1] or count to keep")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--split", default="train")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir (default: the encoder run's)")
    p.add_argument("--max_examples", type=int, default=0, help=">0: only the first examples")
    p.add_argument("--gain", default="self", help="self (the authors' greedy) | full (marginal gain)")
    p.add_argument("--tau", type=float, default=0.95, help="neighbour threshold on 0.5 + 0.5 cos")
    p.add_argument("--eta", type=float, default=1.0, help="tanh temperature of the utility")
    p.add_argument("--no_balance", action="store_true", help="do not take classes in turn")
    p.add_argument("--noise", type=float, default=0.0, help="fraction of labels made symmetric noise")
    p.add_argument("--noise_seed", type=int, default=0)
    p.add_argument("--l2", type=float, default=1e-3, help="L2 strength of the confidence probe")
    p.add_argument("--method", default="prune4rel", help="prune4rel | random (a uniform subset)")
    p.add_argument("--seed", type=int, default=0, help="the random subset of --method random")
    a = p.parse_args(argv)
    try:
        s = run(a.encoder, a.dataset, a.budget, a.out, split=a.split, data_dir=a.data_dir,
                max_examples=a.max_examples, gain=a.gain, tau=a.tau, eta=a.eta,
                balance=not a.no_balance, noise=a.noise, noise_seed=a.noise_seed, l2=a.l2,
                method=a.method, seed=a.seed)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"kept {s['budget']} of {s['n']} examples ({s['wall_s']:.0f} s) -> {a.out}/indices.npy")


if __name__ == "__main__":
    main()
