"""The generator-quality command: class fidelity by a judge trained on real images."""

from __future__ import annotations

import json
import os

import jax
import numpy as np

from evaluators import generator_quality
from models import generators


def test_class_fidelity_counts_by_class():
    asked = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 0, 1, 0, 2, 2])
    f = generator_quality.class_fidelity(predicted, asked, 3)
    assert f["top1"] == 100 * 6 / 8
    assert f["per_class_top1"] == [75.0, 50.0, 100.0]
    assert f["min_class_top1"] == 50.0


def test_samples_are_drawn_per_class():
    g = generators.build("resnet", {"z_dim": 8, "num_classes": 3, "resolution": 16, "width": 4})
    g = generators.Generator(**{**g.__dict__, "params": jax.jit(g.init)(jax.random.key(0))})
    images, asked = generator_quality.sample_by_class(g, 5, seed=0)
    assert images.shape == (15, 16, 16, 3) and images.dtype == np.uint8
    assert asked.tolist() == [0] * 5 + [1] * 5 + [2] * 5


def test_command_writes_its_figures_and_grid(tmp_path, tfds_dir):
    g = generators.build("resnet", {"z_dim": 8, "num_classes": 10, "resolution": 32, "width": 4})
    directory = str(tmp_path / "g")
    generators.save(directory, g, jax.jit(g.init)(jax.random.key(0)))
    code = generator_quality.main(["--generator", directory, "--data_dir", tfds_dir,
                                   "--samples_per_class", "6", "--judge_epochs", "1",
                                   "--max_train", "512", "--max_test", "300",
                                   "--judge_dir", str(tmp_path / "judge")])
    assert code == 0
    with open(os.path.join(directory, "generator_quality.json")) as f:
        result = json.load(f)
    assert len(result["class_fidelity"]["per_class_top1"]) == 10
    assert 0 <= result["vs_real_test"]["sym_precision"] <= 1
    assert os.path.exists(os.path.join(directory, "generator_quality.png"))
    assert os.path.exists(tmp_path / "judge" / "judge.json")


def test_unconditional_generator_is_refused(tmp_path):
    g = generators.build("resnet", {"z_dim": 8, "num_classes": 0, "resolution": 32, "width": 4})
    directory = str(tmp_path / "g")
    generators.save(directory, g, jax.jit(g.init)(jax.random.key(0)))
    assert generator_quality.main(["--generator", directory]) == 2
