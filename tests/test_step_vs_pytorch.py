"""benchmarks/step_vs_pytorch.py, #16's yardstick, runs end to end and its figures hold together.

One timed block of one step per framework: what is tested is that genviews' step, the
PyTorch step and the plain-JAX control all build and run from the script, and that the
row it prints is made of their times (the speed itself is the benchmark's to measure).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from step_vs_pytorch import CASES  # noqa: E402  (the script's own case table: stdlib imports only)


def test_step_vs_pytorch_runs_the_three_steps_and_reports_their_ratio(tfds_dir):
    result = subprocess.run(
        [sys.executable, "benchmarks/step_vs_pytorch.py", "--cases", "convnet", "--threads", "1",
         "--blocks", "1", "--steps", "1", "--control", "--data_dir", tfds_dir],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 1
    r = rows[0]
    assert (r["case"], r["threads"], r["blocks"], r["steps_per_block"]) == ("convnet", 1, 1, 1)
    genviews, torch, plain = r["genviews_s_per_step"], r["pytorch_s_per_step"], r["plain_jax_s_per_step"]
    assert genviews > 0 and torch > 0 and plain > 0
    views = 2 * CASES["convnet"][2]  # two views of each image of the case's batch
    assert abs(r["genviews_views_per_s"] - views / genviews) <= 0.1 + 1e-3 * views / genviews
    assert abs(r["pytorch_views_per_s"] - views / torch) <= 0.1 + 1e-3 * views / torch
    assert abs(r["ratio"] - torch / genviews) <= 1e-3 + 1e-3 * torch / genviews
    assert abs(r["plain_jax_ratio"] - torch / plain) <= 1e-3 + 1e-3 * torch / plain
    assert f"| convnet | 1 | {genviews:.3f} | {torch:.3f} | {r['ratio']:.2f} |" in result.stdout
    assert "Control, convnet at 1 thread(s)" in result.stdout
