"""Every stage of the quickstart study, in its smoke form, and the generator interface."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from configs import quickstart
from models import generators
from studies import report
from studies import run as study


def test_quickstart_smoke_runs_every_stage(tmp_path, tfds_dir):
    config = quickstart.get_config("smoke,train_generator")
    for name in config.runs:
        config.runs[name].data.data_dir = tfds_dir
    config.runs.genviews_supcon.train.views_png = True  # its grid is the study's views.png
    workdir = str(tmp_path / "qs")
    results = study.run(config, workdir)

    rows = {r["run"]: r for r in results["rows"]}
    assert set(rows) == {"genviews_supcon", "real_simclr", "random"}
    assert {r["data"] for r in rows.values()} == {"generated", "real", "random"}
    for r in rows.values():
        assert 0 <= r["linear_probe_top1"] <= 100 and 0 <= r["knn_top1"] <= 100
        assert r["wall_s"] > 0
        with open(os.path.join(workdir, r["run"], "eval.json")) as f:
            assert {"linear_probe", "knn"} <= json.load(f).keys()
    with open(os.path.join(workdir, "results.json")) as f:
        saved = json.load(f)
    assert saved["rows"] == results["rows"]
    # which machine the numbers came from (bit-identical only on the same one)
    m = saved["machine"]
    assert (m["jax"], m["backend"], m["devices"], m["processes"], m["cpu_cores"]) == (
        jax.__version__, jax.default_backend(), jax.device_count(), 1, os.cpu_count())
    assert m["cpu"] and report.machine_line(m) in open(os.path.join(workdir, "results.md")).read()
    for name in ("results.md", "results.png", "views.png", "config.json",
                 "generator/samples.png", "generator/generator.json"):
        assert os.path.exists(os.path.join(workdir, name)), name

    # The pretrained generator loads back through the standard interface.
    g = generators.load(os.path.join(workdir, "generator"))
    assert g.family == "sprites"
    # its latent: pose and colours, then a noise image
    assert (g.z_dim, g.num_classes, g.resolution) == (
        config.runs.generator.generator.z_dim + 1 + 32 * 32 * 3, 10, 32)
    z = jax.random.normal(jax.random.key(0), (4, g.z_dim))
    images = np.asarray(g.apply(g.params, z, jnp.arange(4), truncation=1.0))
    assert images.shape == (4, 32, 32, 3)
    assert images.min() >= -1 and images.max() <= 1
    assert np.abs(images[0] - images[1]).max() > 0  # depends on z and y

    # Running the study again redoes nothing and gives the same table.
    again = study.run(config, workdir)
    assert again["rows"] == results["rows"]
