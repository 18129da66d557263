"""Time and peak memory of `prune4rel` on random clustered features.

The features are 100 Gaussian clusters on the unit sphere (each with its own spread,
so that at tau = 0.95, i.e. cos > 0.9, an example has from a few dozen to a few
thousand neighbours, like class clusters of real embeddings), labels are the cluster
index mod 10 with 20% of them flipped at random, and confidences are high for clean
labels and low for flipped ones. Prints one line of JSON (progress goes to stderr):

    python benchmarks/coreset.py --n 1000000 --d 128 --budget 0.1 --gain self

`seconds` is wall-clock time and `cpu_seconds` the CPU time of all the process's
threads (a fairer number on a machine shared with other jobs). Peak RSS is the
process's high-water mark (resource.getrusage), so it includes the
inputs; `input_mb` gives their share. `rescored` counts the candidates re-scored by
the lazy greedy (a full greedy would score n candidates at each of the budget steps).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evaluators import coreset  # noqa: E402 - needs the repository root on sys.path


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def clustered_features(
    n: int, d: int, *, clusters: int = 100, classes: int = 10, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 features, confidences and noisy labels of `clusters` spherical clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    spread = rng.uniform(0.34, 0.42, clusters).astype(np.float32)
    member = rng.integers(0, clusters, n)
    feats = np.empty((n, d), np.float32)
    for start in range(0, n, 1 << 16):  # in chunks: no float64 n x d temporary
        m = member[start : start + (1 << 16)]
        noise_part = rng.standard_normal((m.size, d), dtype=np.float32)
        feats[start : start + m.size] = centres[m] + (spread[m] / np.sqrt(d))[:, None] * noise_part
    labels = member % classes
    flipped = rng.random(n) < noise
    labels[flipped] = rng.integers(0, classes, int(flipped.sum()))
    confidence = np.where(flipped, rng.beta(1.5, 3.0, n), rng.beta(5.0, 1.5, n))
    return feats, confidence, labels


def _mean_neighbours(feats: np.ndarray, tau: float, sample: int = 256) -> float:
    """Mean number of neighbours (s > tau, itself excluded) of a sample of examples."""
    rows = np.random.default_rng(1).choice(len(feats), size=min(sample, len(feats)), replace=False)
    q = feats[rows] / np.linalg.norm(feats[rows], axis=1, keepdims=True)
    count = 0
    for start in range(0, len(feats), 1 << 15):  # in chunks: O(sample x chunk) memory
        block = feats[start : start + (1 << 15)]
        cos = (q @ block.T) / np.linalg.norm(block, axis=1)
        count += int(np.count_nonzero(0.5 + 0.5 * cos > tau))
    return count / len(rows) - 1.0


def eager_self_greedy(
    feats: np.ndarray,
    confidence: np.ndarray,
    labels: np.ndarray,
    budget: int,
    tau: float,
    eta: float,
) -> np.ndarray:
    """The authors' loop in NumPy: every step scores all candidates of the class and
    adds one full similarity row of the pick to N (balanced, gain="self").

    It uses the same normalised float32 vectors and log-space gain as `prune4rel`, so
    the two agree pick for pick unless the summation order of N flips a near-tie.
    """
    e = coreset._as_embeddings(feats)  # the same normalised float32 vectors
    groups = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    nconf = np.zeros(len(e))
    chosen = np.zeros(len(e), bool)
    left = np.array([g.size for g in groups])
    picks = np.empty(budget, np.int64)
    cls = -1
    for t in range(budget):
        cls = (cls + 1) % len(groups)
        while left[cls] == 0:
            cls = (cls + 1) % len(groups)
        g = groups[cls]
        g = g[~chosen[g]]
        p = g[np.argmax(coreset._log_self_gain(nconf[g] / eta, confidence[g] / eta))]
        picks[t], chosen[p] = p, True
        left[cls] -= 1
        s = 0.5 + 0.5 * (e @ e[p])
        nconf += np.where(s > tau, s, 0).astype(np.float64) * confidence[p]
    return picks


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark once and prints (and returns) its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="number of examples")
    parser.add_argument("--d", type=int, default=128, help="feature dimension")
    parser.add_argument("--budget", type=float, default=0.1, help="fraction of n to select")
    parser.add_argument("--gain", choices=["self", "full"], default="self")
    parser.add_argument("--clusters", type=int, default=100, help="Gaussian clusters")
    parser.add_argument("--tau", type=float, default=0.95)
    parser.add_argument("--eta", type=float, default=1.0)
    parser.add_argument("--no_balance", action="store_true", help="pick over all classes")
    parser.add_argument("--objective", action="store_true", help="also report F(S)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="also run the eager one-row-per-step loop (gain self, balanced) and compare",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(message)s")

    feats, confidence, labels = clustered_features(
        args.n, args.d, clusters=args.clusters, seed=args.seed
    )
    input_mb = (feats.nbytes + confidence.nbytes + labels.nbytes) / 2**20
    neighbours = _mean_neighbours(feats, args.tau)
    budget = int(round(args.budget * args.n))

    rescored = 0
    for cls in (coreset._SelfGain, coreset._FullGain):
        original = cls.rescore

        def counted(self, idx, t, _original=original):
            nonlocal rescored
            rescored += idx.size
            return _original(self, idx, t)

        cls.rescore = counted

    start, cpu_start = time.perf_counter(), time.process_time()
    picks = coreset.prune4rel(
        feats,
        confidence,
        labels,
        budget,
        tau=args.tau,
        eta=args.eta,
        balance=not args.no_balance,
        gain=args.gain,
    )
    seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    record = {
        "benchmark": "prune4rel",
        "n": args.n,
        "d": args.d,
        "clusters": args.clusters,
        "budget": budget,
        "gain": args.gain,
        "balance": not args.no_balance,
        "tau": args.tau,
        "eta": args.eta,
        "mean_neighbours": round(neighbours, 1),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(cpu_seconds, 2),
        "rescored": rescored,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "input_mb": round(input_mb, 1),
        "distinct": bool(np.unique(picks).size == budget),
    }
    if args.objective:
        start = time.perf_counter()
        f = coreset.objective(feats, confidence, picks, tau=args.tau, eta=args.eta)
        record["objective"] = round(f, 3)
        record["objective_seconds"] = round(time.perf_counter() - start, 2)
    if args.check:
        start = time.perf_counter()
        eager = eager_self_greedy(feats, confidence, labels, budget, args.tau, args.eta)
        record["eager_seconds"] = round(time.perf_counter() - start, 2)
        same = eager == picks
        record["same_picks"] = bool(same.all())
        record["first_difference"] = None if same.all() else int(np.argmin(same))
    print(json.dumps(record), flush=True)
    return record


if __name__ == "__main__":
    main()
