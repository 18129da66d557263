"""Every view type and loss runs end to end; exports are deterministic and train like online views."""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import genviews
from data import export, views
from errors import ConfigError, UserError
from evaluators import features
from models import generators
from studies.run import validate
from tasks import loop
from tasks.contrastive import ContrastiveTask

EXPORT = dict(num_anchors=20, num_views=3, seed=5, latent="multi_sigma", sigmas=(0.3, 1.0),
              batch_size=8)


def _smoke(**overrides):
    c = genviews.get_config("smoke")
    c.train.steps = 2
    c.train.log_every = 1
    c.train.ckpt_every = 2
    for key, value in overrides.items():
        group, name = key.split("__")
        c[group][name] = value
    return c


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


# Each latent view type, and one of them with SimCLR's pixel views after it (the pixel
# stage acts on whatever images the latent stage made: tests/test_views.py tests it; the
# other three pairs cost the suite 18 s of compiling).
@pytest.mark.parametrize("latent,pixel", [("angular", "none"), ("independent", "none"),
                                          ("multi_sigma", "none"), ("steer", "none"),
                                          ("steer", "simclr")])
def test_every_view_type_makes_views_in_the_smoke_config(latent, pixel):
    # The views of the train step (what differs between view types), without the encoder,
    # whose step is the same for every view type and is run end to end below.
    config = _smoke(views__latent=latent, views__pixel=pixel, views__num_views=3)
    validate(config)
    task = ContrastiveTask(config)
    out = jax.jit(task.make_views)(0, jnp.arange(4, dtype=jnp.int32))
    x = np.asarray(out["image"])
    assert x.shape == (12, 32, 32, 3) and np.all(np.isfinite(x)) and 0 <= x.min() <= x.max() <= 1
    np.testing.assert_array_equal(out["id"], np.repeat(np.arange(4), 3))
    # (z, one-hot y): the latent tower's input
    assert np.asarray(out["z"]).shape == (12, task.generator.z_dim + 10)
    views_of_one = x.reshape(4, 3, -1)
    assert np.abs(views_of_one[:, 0] - views_of_one[:, 1]).max() > 1e-3  # views differ


def test_multi_view_smoke_run(tmp_path):
    config = _smoke(views__latent="angular", views__pixel="none", loss__name="multipos",
                    views__num_views=3, train__views_png=True)
    workdir = str(tmp_path / "run")
    loop.train(config, workdir)
    lines = _metrics(workdir)
    assert [m["step"] for m in lines] == [1, 2]
    assert all(np.isfinite(m["loss"]) for m in lines)
    assert os.path.exists(os.path.join(workdir, "views.png"))


def _check_image_tower_is_probed(workdir):
    # eval.py restores the image encoder, not the latent tower, and its features are those
    # of the trained encoder applied to images.
    config = features.load_config(workdir)
    encoder, variables, step = features.restore_encoder(workdir, config)
    assert step == config.train.steps
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    out = features.extract(encoder, variables, images, 32, batch_size=4)
    assert out.shape == (3, 8 * config.model.width) and np.all(np.isfinite(out))


@pytest.mark.parametrize("overrides,key", [
    ({"views__latent": "independent", "generator__num_classes": 0, "generator__init": "random"},
     "views.latent"),
    ({"views__latent": "multi_sigma", "views__sigmas": ()}, "views.sigmas"),
    ({"views__sigmas": (0.1, -1.0)}, "views.sigmas"),
    ({"loss__name": "clip_latent", "data__source": "real"}, "loss.name"),
    ({"data__source": "/no/such/export"}, "data.source"),
    ({"generator__family": "bigbigan", "generator__init": "random"},
     "generator.num_classes"),  # a random bigbigan is unconditional
])
def test_impossible_view_settings_name_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"config key {key}"):
        validate(_smoke(**overrides))


@pytest.fixture(scope="module")
def generator_dir(tmp_path_factory):
    """A small random class-conditional generator, saved as a checkpoint."""
    path = str(tmp_path_factory.mktemp("gen") / "g")
    g = generators.build("dcgan", {"z_dim": 16, "num_classes": 10, "resolution": 32, "width": 8})
    generators.save(path, g, jax.jit(g.init)(jax.random.key(1)))
    return path


@pytest.fixture(scope="module")
def exported(generator_dir, tmp_path_factory):
    """The same export written twice (one TFDS directory shared by the tests below)."""
    root = tmp_path_factory.mktemp("exports")
    spec = export.ExportSpec(**EXPORT)
    outs = [str(root / name) for name in ("a", "b")]
    for out in outs:
        export.export(generator_dir, out, spec)
    return outs


def _files(directory):
    out = {}
    for name in sorted(os.listdir(directory)):
        with open(os.path.join(directory, name), "rb") as f:
            out[name] = f.read()
    return out


def test_export_twice_gives_identical_bytes(exported):
    a, b = (_files(d) for d in exported)
    assert any(".array_record-" in name for name in a)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)


def test_export_reads_back_what_was_written(exported, generator_dir):
    rows = export.read(exported[0])
    n, k = EXPORT["num_anchors"], EXPORT["num_views"]
    assert rows["anchor"].shape == (n, 32, 32, 3) and rows["views"].shape == (n, k, 32, 32, 3)
    assert rows["anchor"].dtype == np.uint8
    # Anchor i is instance i of the online views at step 0 with the export's seed.
    spec = views.ViewSpec(kind="multi_sigma", num_views=k, sigmas=EXPORT["sigmas"])
    for i in (0, 13):
        key = jax.random.fold_in(views.example_keys(EXPORT["seed"], 0, jnp.array([i]))[0], 0)
        want = views.sample(key, spec, z_dim=16, num_classes=10)
        # Batched under jit vs one by one: the same draws up to float32 rounding.
        np.testing.assert_allclose(rows["anchor_z"][i], want["anchor"], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(rows["views_z"][i], want["views"], rtol=1e-6, atol=1e-6)
        assert rows["label"][i] == int(want["label"])
    # The images are the generator's images of those latents, as uint8.
    g = generators.load(generator_dir)
    z = np.concatenate([rows["anchor_z"][:4, None], rows["views_z"][:4]], 1).reshape(-1, 16)
    images = np.asarray(g.apply(g.params, z, np.repeat(rows["label"][:4], k + 1), 1.0))
    stored = np.concatenate([rows["anchor"][:4, None], rows["views"][:4]], 1).reshape(images.shape)
    np.testing.assert_allclose(stored / 127.5 - 1.0, images, atol=1 / 127.5 + 1e-6)
    meta = export.metadata(exported[0])
    assert (meta["num_anchors"], meta["num_views"], meta["seed"]) == (n, k, EXPORT["seed"])


def test_a_truncated_export_is_one_line(exported, tmp_path):
    import shutil

    damaged = str(tmp_path / "export")
    shutil.copytree(exported[0], damaged)
    (record,) = [os.path.join(damaged, f) for f in os.listdir(damaged) if ".array_record-" in f]
    with open(record, "r+b") as f:
        f.truncate(os.path.getsize(record) // 2)
    with pytest.raises(UserError, match=f"export {damaged} cannot be read .*damaged"):
        export.read(damaged)


def test_export_refuses_bad_requests(exported, generator_dir, tmp_path):
    spec = export.ExportSpec(**EXPORT)
    with pytest.raises(UserError, match="exists and is not empty"):
        export.export(generator_dir, exported[0], spec)
    with pytest.raises(UserError, match="no generator checkpoint"):
        export.export(str(tmp_path / "nothing"), str(tmp_path / "o"), spec)
    with pytest.raises(UserError, match="--num_views must be ≥ 2"):
        export.export(generator_dir, str(tmp_path / "o"), export.ExportSpec(num_anchors=4, num_views=1))
    assert not os.path.exists(tmp_path / "o")


def test_training_from_an_export_with_clip_latent(exported, tmp_path):
    # The scale starts at 1/0.07; clamped at that value it can only stay or fall.
    config = _smoke(data__source=exported[0], views__num_views=2, loss__name="clip_latent",
                    loss__clip_max_logit_scale=1 / 0.07, train__views_png=True)
    workdir = str(tmp_path / "offline")
    loop.train(config, workdir)
    lines = _metrics(workdir)
    assert all(np.isfinite(m["loss"]) for m in lines)
    assert all(0 < m["logit_scale"] <= (1 / 0.07) * (1 + 1e-6) for m in lines)
    assert os.path.exists(os.path.join(workdir, "views.png"))
    _check_image_tower_is_probed(workdir)


def test_a_pruned_subset_of_an_export_trains_on_its_rows_with_its_labels(exported, tmp_path):
    from data import datasets

    rows = export.read(exported[0])
    # An export loads as a labelled dataset of its anchors (what the prune command reads).
    anchors = datasets.load(exported[0], "train", image_size=32)
    np.testing.assert_array_equal(anchors.images, rows["anchor"])
    np.testing.assert_array_equal(anchors.labels, rows["label"])
    small = datasets.load(exported[0], "train", image_size=16)
    assert small.images.shape == (20, 16, 16, 3)
    # A subset directory as python -m evaluators.prune writes it: rows in the order chosen,
    # and the (noisy) labels of every example.
    subset = tmp_path / "subset"
    subset.mkdir()
    idx = np.array([7, 2, 19, 11])
    noisy = (rows["label"] + 1) % 10
    np.save(subset / "indices.npy", idx)
    np.save(subset / "labels.npy", noisy)
    config = _smoke(data__source=exported[0], data__subset=str(subset), loss__name="supcon")
    validate(config)
    task = ContrastiveTask(config)
    kept = task.dataset.read(np.arange(len(idx)))
    np.testing.assert_array_equal(kept["image"], rows["views"][idx, :2])
    np.testing.assert_array_equal(kept["z"], rows["views_z"][idx, :2])
    np.testing.assert_array_equal(kept["label"], noisy[idx])
    np.testing.assert_array_equal(task.dataset.labels, noisy[idx])
    loop.train(config, str(tmp_path / "run"))
    assert all(np.isfinite(m["loss"]) for m in _metrics(str(tmp_path / "run")))
    # Indices of another dataset, or no subset at all, are refused naming the key.
    np.save(subset / "labels.npy", noisy[:10])
    with pytest.raises(ConfigError, match="data.subset: .* selected from 10 examples"):
        ContrastiveTask(config)
    for source, where in ((exported[0], tmp_path / "none"), ("generator", subset)):
        with pytest.raises(ConfigError, match="config key data.subset"):
            validate(_smoke(data__source=source, data__subset=str(where)))
