"""The ResNet GAN recipe (configs/generator.py:gan, tasks/generator.py) end to end, in smoke form."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from configs import generator as generator_config
from models import generators
from tasks import loop


def test_gan_smoke_trains_and_exports_a_generator(tmp_path, tfds_dir):
    config = generator_config.get_config("gan,smoke")
    config.data.data_dir = tfds_dir
    config.train.steps = config.train.ckpt_every = 2  # one checkpoint: the step, not the loop, is tested
    workdir = str(tmp_path / "gan")
    loop.train(config, workdir)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        lines = [json.loads(line) for line in f]
    assert lines and all(np.isfinite(r["d_loss"]) and np.isfinite(r["g_loss"]) for r in lines)
    assert "classifier_acc" in lines[-1]
    assert os.path.exists(os.path.join(workdir, "samples.png"))
    g = generators.load(workdir)
    assert g.family == "resnet" and g.num_classes == 10
    z = jax.random.normal(jax.random.key(0), (2, g.z_dim))
    images = np.asarray(g.apply(g.params, z, jnp.array([0, 1])))
    assert images.shape == (2, 32, 32, 3) and np.abs(images).max() <= 1
    assert np.abs(images[0] - images[1]).max() > 0
