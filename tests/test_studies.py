"""Study configs build and validate; a finite pool of anchors; a missing generator is named."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import jax.numpy as jnp
import numpy as np
import pytest

from configs import common, genviews
from errors import ConfigError, UserError
from studies import run as study
from tasks.contrastive import ContrastiveTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDIES = ["studies.ablation", "studies.anchors", "studies.forward_forward", "studies.genreal",
           "studies.mix", "quickstart",
           "paper.imagenet100_table"]
RUNS = ["paper.imagenet100_real", "paper.imagenet100_biggan_supcon",
        "paper.imagenet100_bigbigan_simclr"]


@pytest.mark.parametrize("name", STUDIES)
def test_every_study_builds_and_validates_in_its_smoke_form(name):
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    assert set(config.kinds.keys()) <= set(config.runs.keys())
    for run in config.runs.values():
        study.validate(run)
    for run_name in config.get("x", {}):
        assert run_name in config.runs


@pytest.mark.parametrize("name", RUNS)
def test_paper_runs_use_the_paper_probe_in_their_smoke_form(name):
    config = importlib.import_module(f"configs.{name}").get_config("smoke")
    study.validate(config)
    assert "linear_probe_genrep" in config.eval.evaluators


def test_bigbigan_needs_only_a_converted_generator():
    from configs.paper import imagenet100_bigbigan_simclr
    config = imagenet100_bigbigan_simclr.get_config()
    with pytest.raises(ConfigError, match="generator.checkpoint: is empty"):
        study.validate(config)
    config.generator.checkpoint = "/gens/bigbigan-resnet50"
    study.validate(config)
    assert config.generator.family == "bigbigan"
    smoke = imagenet100_bigbigan_simclr.get_config("smoke")
    assert (smoke.generator.family, smoke.generator.init) == ("bigbigan", "random")


def test_study_options_are_typed_and_checked():
    from configs.studies import anchors
    config = anchors.get_config("steps=40,batch=32,generator=/g")
    run = config.runs.anchors_128
    assert (run.train.steps, run.train.batch_size, run.generator.checkpoint) == (40, 32, "/g")
    with pytest.raises(ConfigError, match="unknown config arg 'stepz'"):
        anchors.get_config("stepz=4")
    with pytest.raises(ConfigError, match="steps='x' is not a int"):
        anchors.get_config("steps=x")


def test_a_missing_generator_is_named_before_any_run(tmp_path):
    from configs.studies import ablation
    config = ablation.get_config(f"generator={tmp_path / 'nothing'}")
    with pytest.raises(UserError, match="holds no generator"):
        study.run(config, str(tmp_path / "study"))
    assert not os.path.exists(tmp_path / "study" / "both")


def test_a_finite_pool_of_anchors_repeats_its_instances():
    config = genviews.get_config("smoke")
    config.views.num_anchors = 3
    task = ContrastiveTask(config)
    index = jnp.arange(16, dtype=jnp.int32)
    keys = jnp.concatenate([task.example_keys(s, index) for s in range(2)])
    inst = task.instances(keys)
    anchors = np.unique(np.asarray(inst["anchor"]), axis=0)
    assert len(anchors) == 3  # 32 draws from a pool of 3
    pool = np.asarray(task.pool_index(keys))
    for i in range(3):  # one pool instance: the same anchor, class and view latents every draw
        rows = np.flatnonzero(pool == i)
        for part in ("anchor", "views", "label"):
            assert np.all(np.asarray(inst[part])[rows] == np.asarray(inst[part])[rows[0]])

    config.views.num_anchors = 0  # unlimited: every draw a new anchor
    unlimited = ContrastiveTask(config).instances(keys)
    assert len(np.unique(np.asarray(unlimited["anchor"]), axis=0)) == 32


def _steered(walks: str):
    """A study whose steered-views run takes its walks from another run, "@NAME"."""
    from configs import steering

    config = common.study_base()
    config.study = "walks by reference"
    config.runs.steered = genviews.get_config("smoke")
    config.runs.steered.views.latent = "steer"
    config.runs.steered.views.walks = walks
    config.kinds.steered = "generated"
    config.runs.walks = steering.get_config("smoke")
    config.kinds.walks = ""
    return config


def test_a_run_named_by_views_walks_is_trained_first_and_resolved(tmp_path):
    config = _steered("@walks")
    study.validate(config)
    assert study.order(config) == ["walks", "steered"]  # listed after, trained before
    run = config.runs.steered
    study.resolve(run, str(tmp_path))
    assert run.views.walks == str(tmp_path / "walks")


def test_views_walks_naming_no_run_is_a_one_line_error(tmp_path, command_line):
    with pytest.raises(ConfigError, match="runs.steered.views.walks: '@nothing' names no run"):
        study.validate(_steered("@nothing"))
    path = tmp_path / "study.py"
    path.write_text("from configs import common, genviews\n\n\ndef get_config(arg=None):\n"
                    "    c = common.study_base()\n    c.study = 'walks by reference'\n"
                    "    c.runs.steered = genviews.get_config('smoke')\n"
                    "    c.runs.steered.views.latent = 'steer'\n"
                    "    c.runs.steered.views.walks = '@nothing'\n"
                    "    c.kinds.steered = 'generated'\n    return c\n")
    result = command_line("train.py", "--config", path, "--workdir", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: config key runs.steered.views.walks: '@nothing' names no run of the study"]
    assert not os.path.exists(tmp_path / "out")


def test_an_old_eval_key_set_in_a_config_names_its_new_key():
    config = genviews.get_config("smoke")
    config.eval.knn_k = 5
    with pytest.raises(ConfigError, match="config key eval.knn_k: is now eval.knn.k"):
        study.validate(config)


def test_the_old_prune_study_command_points_to_the_new_one():
    result = subprocess.run([sys.executable, "-m", "evaluators.prune_study", "--encoder", "x"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: python -m evaluators.prune_study is now python -m studies.prune (same arguments)"]
