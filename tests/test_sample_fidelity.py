"""Fidelity of a generator's samples and views: eval.py's hook and the σ study, on smoke runs."""

from __future__ import annotations

import json
import os

import jax
import numpy as np
import pytest

from configs import real
from configs.studies import sigma
from data import views
from errors import UserError
from evaluators import registry, sample_fidelity
from models import generators
from studies import run as study
from tasks import loop

METRICS = ("precision", "recall", "density", "coverage", "c_precision", "sym_precision", "sym_recall")


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tfds_dir):
    """A randomly initialised smoke encoder (0 steps): a run directory eval.py accepts."""
    config = real.get_config("smoke")
    config.data.data_dir = tfds_dir
    config.train.steps = 0
    workdir = str(tmp_path_factory.mktemp("enc") / "enc")
    loop.train(config, workdir)
    return workdir


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    """A small random DCGAN saved as a generator checkpoint (no config.json: a 'converted' one)."""
    g = generators.build("dcgan", {"z_dim": 16, "num_classes": 10, "resolution": 32, "width": 8})
    directory = str(tmp_path_factory.mktemp("gen") / "gen")
    generators.save(directory, g, jax.jit(g.init)(jax.random.key(3)))
    return directory


def test_latents_share_anchors_and_perturb_by_sigma():
    base = sample_fidelity.sample_latents(16, 10, 50, sigma=0.0, seed=1)
    for s in (0.1, 2.0):
        lat = sample_fidelity.sample_latents(16, 10, 50, sigma=s, seed=1)
        np.testing.assert_array_equal(lat["anchor"], base["anchor"])
        np.testing.assert_array_equal(lat["label"], base["label"])
        eps = (lat["view"] - lat["anchor"]) / s  # a normal truncated at ±2
        assert np.abs(eps).max() <= views.TRUNCATION_BOUND + 1e-5
        assert 0.7 < eps.std() < 1.0  # std of N(0, 1) truncated at ±2: 0.880
    np.testing.assert_array_equal(base["view"], base["anchor"])
    assert set(np.unique(base["label"])) <= set(range(10))


def test_eval_reports_fidelity(encoder_dir, generator_dir):
    r = registry.evaluate(encoder_dir, max_train=100, max_test=50, fidelity_generator=generator_dir,
                            fidelity_samples=60, fidelity_sigmas=(0.0, 1.0), fidelity_k=3)
    with open(os.path.join(encoder_dir, "eval.json")) as f:
        assert json.load(f)["fidelity"] == json.loads(json.dumps(r["fidelity"]))
    f = r["fidelity"]
    assert (f["num_real"], f["num_generated"], f["k"], f["real_dataset"]) == (60, 60, 3, "genviews_shapes")
    assert set(f["views"]) == {"0", "1"}
    # σ = 0: the views are their anchors, so every metric of views against anchors is 1
    # (each view sits at distance 0 from its anchor; each ball holds its centre and k - 1
    # neighbours, so density is N/M = 1), and the views against real are the samples.
    assert f["views"]["0"]["vs_anchors"] == {m: 1.0 for m in METRICS}
    assert f["views"]["0"]["vs_real"] == f["samples_vs_real"]
    for part in (f["samples_vs_real"], f["views"]["1"]["vs_anchors"], f["views"]["1"]["vs_real"]):
        assert set(part) == set(METRICS)
        assert all(0 <= part[m] <= 1 for m in METRICS if m != "density")
    assert f["views"]["1"]["vs_anchors"]["sym_precision"] < 1  # σ = 1 moves the views


def test_eval_fidelity_errors(encoder_dir, tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        registry.evaluate(encoder_dir, fidelity_generator=str(tmp_path / "missing"))
    with pytest.raises(UserError, match="generator.json"):
        registry.evaluate(encoder_dir, fidelity_generator=str(tmp_path))
    with pytest.raises(UserError, match="fidelity_k"):
        registry.evaluate(encoder_dir, fidelity_generator=str(tmp_path), fidelity_samples=5,
                            fidelity_k=5)


def test_sigma_study_smoke(tmp_path, tfds_dir):
    config = sigma.get_config("smoke,seeds=2")
    del config.runs["random"], config.kinds["random"]  # a baseline only; the sweep is what is tested
    kept = sigma.SMOKE_SIGMAS[0]  # one σ of the sweep: what is tested is per σ, and it halves the time
    for name, value in list(config.x.items()):
        if value != kept:
            del config.runs[name], config.kinds[name], config.x[name]
    for name in config.runs:
        config.runs[name].data.data_dir = tfds_dir
        config.runs[name].train.steps = 0  # random encoders: the study's own code is what is tested
        config.runs[name].train.views_png = False
        config.runs[name].eval.evaluators = ("linear_probe", "knn")  # no few-shot: faster
    config.fidelity.samples = 40
    results = study.run(config, str(tmp_path / "sigma"))
    swept = {r["run"]: r for r in results["rows"] if "x" in r}
    assert {r["x"] for r in swept.values()} == {kept}
    for r in swept.values():
        assert r["fidelity"]["sigma"] == r["x"]
        assert set(r["fidelity"]["vs_real"]) == set(METRICS)
        # Each row is the mean over its 2 seeds, each trained in its own directory.
        assert [s["seed"] for s in r["seeds"]] == [0, 1] and "linear_probe_std" in r
        assert os.path.isdir(tmp_path / "sigma" / f"{r['run']}.seed1")
    for name in ("results.md", "results.json", "results.png"):
        assert os.path.exists(tmp_path / "sigma" / name), name
    assert "vs anchors: sym_recall" in (tmp_path / "sigma" / "results.md").read_text()


def test_sigma_study_refuses_a_missing_generator_before_any_run(tmp_path):
    config = sigma.get_config(f"generator={tmp_path / 'no_generator'}")
    with pytest.raises(UserError, match="holds no generator"):
        study.run(config, str(tmp_path / "sigma"))
    assert not any(p.is_dir() for p in (tmp_path / "sigma").iterdir())
