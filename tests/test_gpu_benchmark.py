"""benchmarks/gpu.py runs end to end in its --smoke form (on CPU here), and its figures hold together."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_benchmark_smoke(tmp_path):
    out = tmp_path / "gpu.json"
    result = subprocess.run([sys.executable, "benchmarks/gpu.py", "--smoke", "--steps", "1",
                             "--out", str(out)], cwd=ROOT, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    rows = {r["case"]: r for r in report["rows"]}
    assert list(rows) == ["resnet50_bf16", "biggan_resnet50_bf16", "pytorch_resnet50_bf16"]
    real, generated, torch_row = rows.values()
    for r in rows.values():
        assert r["views"] == 2 * r["instances"] and r["s_per_step"] > 0
        assert abs(r["views_per_s"] - r["views"] / r["s_per_step"]) < 1e-6 * r["views_per_s"]
    # The same encoder step, plus a BigGAN-deep-128 image per view: XLA counts those FLOPs
    # in the generated-views step (measured at smoke scale: 2.6e9 against 1.4e9).
    assert generated["flops_per_step"] > 1.5 * real["flops_per_step"] > 0
    assert abs(real["mfu"] - real["flops_per_step"] / real["s_per_step"]
               / report["peak_bf16_flops"]) < 1e-9
    assert generated["views_s_per_step"] > 0 and generated["views_share"] > 0
    assert torch_row["backend"] in ("cpu", "cuda")
    assert "| biggan_resnet50_bf16 |" in result.stdout


def test_synthetic_data_needs_no_tensorflow():
    # The device image has no TensorFlow: the step's imports and data.name=synthetic must not
    # need it. A subprocess, since this test process has imported TensorFlow already.
    code = ("import sys, tasks.contrastive; from data import datasets; "
            "a = datasets.load('synthetic', 'train', image_size=8, max_examples=5); "
            "b = datasets.load('synthetic', 'train', image_size=8, max_examples=5); "
            "c = datasets.load('synthetic', 'test', image_size=8, max_examples=5); "
            "assert (a.images == b.images).all() and not (a.images == c.images).all(); "
            "assert a.images.shape == (5, 8, 8, 3) and a.num_classes == 1000; "
            "print(sorted(m for m in ('tensorflow', 'tensorflow_datasets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
