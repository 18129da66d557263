"""Time and peak memory of `fidelity_metrics` on random Gaussian features.

Shows that the tiled computation runs at N = M = 50,000, d = 512 (the scale of an
FID-style evaluation) without materialising the N x M distance matrix, which alone
would take 10 GB in float32. Prints one line of JSON:

    python benchmarks/fidelity.py [--n 50000 --d 512 --k 5]

Peak RSS is the process's high-water mark (resource.getrusage), so it includes the
inputs, JAX's own footprint and compilation; `input_mb` gives the inputs' share.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time

import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evaluators.fidelity import (  # noqa: E402 - needs the repository root on sys.path
    DEFAULT_TILE_COLS,
    DEFAULT_TILE_ROWS,
    fidelity_metrics,
)


def _peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (ru_maxrss is KiB on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark once and prints (and returns) its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="rows of each set (N = M)")
    parser.add_argument("--d", type=int, default=512, help="feature dimension")
    parser.add_argument("--k", type=int, default=5, help="nearest neighbour of the radii")
    parser.add_argument("--tile_rows", type=int, default=DEFAULT_TILE_ROWS)
    parser.add_argument("--tile_cols", type=int, default=DEFAULT_TILE_COLS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    real = rng.standard_normal((args.n, args.d), dtype=np.float32)
    fake = rng.standard_normal((args.n, args.d), dtype=np.float32)
    rss_before = _peak_rss_mb()

    start = time.perf_counter()
    metrics = fidelity_metrics(
        real, fake, k=args.k, tile_rows=args.tile_rows, tile_cols=args.tile_cols
    )
    seconds = time.perf_counter() - start

    record = {
        "benchmark": "fidelity_metrics",
        "n": args.n,
        "m": args.n,
        "d": args.d,
        "k": args.k,
        "tile_rows": args.tile_rows,
        "tile_cols": args.tile_cols,
        "backend": jax.default_backend(),
        "seconds": round(seconds, 3),  # includes jit compilation (a second or two)
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_rss_before_call_mb": round(rss_before, 1),
        "input_mb": round((real.nbytes + fake.nbytes) / 2**20, 1),
        "full_distance_matrix_mb": round(args.n * args.n * 4 / 2**20, 1),
        "metrics": metrics,
    }
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
