"""The ImageNet path, offline: a small ImageNet-shaped manual download (the two tar files
ImageNet users place in TFDS's manual_dir, JPEGs of ImageNet-like non-square sizes) is
prepared by TFDS's own imagenet2012 builder, through data.datasets, into array_record;
it reads as imagenet2012 and as imagenet100 (the 100-class filter), and the paper
configs' smoke runs train and probe on it through the same code as on the real dataset.

(`tfds.testing.mock_data` cannot stand in for it: it replaces the data_dir with its own,
so the builder is never prepared, and genviews reopens a prepared dataset through
`tfds.builder_from_directory`, which it does not mock; its random images are 5-49 pixels.)
"""

from __future__ import annotations

import functools
import importlib
import io
import os
import tarfile
import zlib

import numpy as np
import pytest

from data import datasets

SIZES = ((80, 120), (150, 100), (96, 128), (120, 90))  # (height, width), non-square as ImageNet's
BAND = 0.1  # each end of an image's long side is black over this fraction: centre crops drop it
TRAIN_PER_CLASS = 4  # train images of each synset
OUTSIDE = 4  # synsets outside the 100 in the train split (3 images each)
VAL_IMAGES = 100  # ILSVRC2012_val_00000001..100: their labels are the first 100 of TFDS's list


@functools.cache
def _tfds_list(name: str) -> list[str]:
    """A list shipped with TFDS's imagenet2012 builder: the 1000 synsets, or the validation labels."""
    import tensorflow_datasets as tfds

    path = os.path.join(os.path.dirname(tfds.__file__), "datasets", "imagenet2012", name)
    with open(path) as f:
        return f.read().split()


def _grayscale(file_name: str) -> bool:
    """Whether image `file_name` is a one-channel JPEG (as a few of ImageNet's are)."""
    return zlib.crc32(file_name.encode()) % 7 == 0


def _colour(file_name: str) -> np.ndarray:
    """The flat colour of image `file_name`, away from black so the bands stand out."""
    colour = np.random.default_rng(zlib.crc32(file_name.encode())).integers(48, 208, 3)
    return (colour[:1].repeat(3) if _grayscale(file_name) else colour).astype(np.uint8)


def _jpeg(file_name: str, height: int, width: int) -> bytes:
    from PIL import Image

    image = np.empty((height, width, 3), np.uint8)
    image[:] = _colour(file_name)
    long_axis = 0 if height > width else 1
    band = round(BAND * image.shape[long_axis])
    index = [slice(None)] * 3
    for ends in (slice(0, band), slice(image.shape[long_axis] - band, None)):
        index[long_axis] = ends
        image[tuple(index)] = 0
    out = io.BytesIO()
    Image.fromarray(image[..., 0] if _grayscale(file_name) else image).save(
        out, format="JPEG", quality=95)
    return out.getvalue()


def _tar(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _synset(file_name: str) -> str:
    """The synset of an image, from its file name alone (validation: TFDS's label list)."""
    if file_name.startswith("ILSVRC2012_val_"):
        return _tfds_list("validation_labels.txt")[int(file_name[15:23]) - 1]
    return file_name.split("_")[0]


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> str:
    """A TFDS data_dir where ImageNet's manual download is a small fake, prepared (by
    data.datasets, as on first use of the real one) into imagenet2012 in array_record."""
    data_dir = tmp_path_factory.mktemp("imagenet_tfds")
    inside = set(datasets.imagenet100_classes())
    val_synsets = _tfds_list("validation_labels.txt")[:VAL_IMAGES]
    # Train on the synsets of the 100 that the validation images hold (so the probe has
    # them on both sides), and a few synsets outside the 100.
    train = sorted({s for s in val_synsets if s in inside})
    train += [s for s in _tfds_list("labels.txt") if s not in inside][:OUTSIDE]
    synset_tars = {}
    for k, synset in enumerate(train):
        count = TRAIN_PER_CLASS if synset in inside else 3
        names = [f"{synset}_{1000 + i}.JPEG" for i in range(count)]
        synset_tars[f"{synset}.tar"] = _tar(
            {n: _jpeg(n, *SIZES[(i + k) % len(SIZES)]) for i, n in enumerate(names)})
    val_names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(VAL_IMAGES)]
    val = {n: _jpeg(n, *SIZES[i % len(SIZES)]) for i, n in enumerate(val_names)}
    manual = data_dir / "downloads" / "manual"
    manual.mkdir(parents=True)
    (manual / "ILSVRC2012_img_train.tar").write_bytes(_tar(synset_tars))
    (manual / "ILSVRC2012_img_val.tar").write_bytes(_tar(val))
    # Prepared here, by data.datasets._builder, as a user's first run prepares ImageNet.
    datasets.source("imagenet2012", "train", image_size=32, data_dir=str(data_dir))
    return str(data_dir)


def _stored(data_dir: str, split: str) -> list[str]:
    """The file name of each row of a prepared split, in its order, read by TFDS directly."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("imagenet2012", data_dir=data_dir, file_format="array_record")
    rows = builder.as_data_source(split, decoders={"image": tfds.decode.SkipDecoding()})
    return [rows[i]["file_name"].decode() for i in range(len(rows))]


def _check_images(images: np.ndarray, file_names: list[str], size: int) -> None:
    """Each image is its JPEG's colour all over: the shorter side resized to `size` and the
    centre cropped (a squashed or uncropped image would show the black bands)."""
    assert images.shape == (len(file_names), size, size, 3) and images.dtype == np.uint8
    expected = np.stack([_colour(n) for n in file_names])[:, None, None, :]
    error = np.abs(images.astype(int) - expected).max(axis=(1, 2, 3))
    assert error.max() <= 12, [(n, int(e)) for n, e in zip(file_names, error, strict=True)
                              if e > 12]


def _check_source(found, expected_labels: list[int], file_names: list[str]) -> None:
    """Every row of `found`, read at once: its labels (read and `labels` alike) and images."""
    batch = found.read(np.arange(len(found)))
    assert batch["label"].tolist() == expected_labels == found.labels.tolist()
    _check_images(batch["image"], file_names, 32)


def test_imagenet2012_reads_every_image_under_its_synset(imagenet):
    names = _tfds_list("labels.txt")
    for split in ("train", "validation"):
        stored = _stored(imagenet, split)
        assert any(map(_grayscale, stored)) and not all(map(_grayscale, stored))
        found = datasets.source("imagenet2012", split, image_size=32, data_dir=imagenet)
        assert found.num_classes == 1000 and len(found) == len(stored)
        _check_source(found, [names.index(_synset(n)) for n in stored], stored)
        assert len(stored) == (VAL_IMAGES if split == "validation" else len(set(stored)))


def test_imagenet100_keeps_the_100_classes_relabelled_in_sorted_order(imagenet):
    with open(os.path.join(os.path.dirname(datasets.__file__), "imagenet100.txt")) as f:
        hundred = sorted(line.strip() for line in f if line.strip())
    assert len(hundred) == 100
    for split in ("train", "validation"):
        stored = _stored(imagenet, split)
        kept = [n for n in stored if _synset(n) in hundred]
        left_out = [n for n in stored if _synset(n) not in hundred]
        assert kept and left_out  # the filter has work to do on both splits
        assert any(map(_grayscale, kept)) and not all(map(_grayscale, kept))
        found = datasets.source("imagenet100", split, image_size=32, data_dir=imagenet)
        assert found.num_classes == 100 and len(found) == len(kept)
        expected = [hundred.index(_synset(n)) for n in kept]
        _check_source(found, expected, kept)
        # A prefix (max_examples) of the filtered rows, and rows out of order, as Grain reads them.
        first = datasets.source("imagenet100", split, image_size=32, data_dir=imagenet,
                                max_examples=5)
        assert len(first) == 5 and first.labels.tolist() == expected[:5]
        rows = np.array([3, 0, len(kept) - 1])
        some = found.read(rows)
        assert some["label"].tolist() == [expected[r] for r in rows]
        _check_images(some["image"], [kept[r] for r in rows], 32)


def _paper_config(name: str, smoke: bool):
    """configs/paper/NAME.py, reading what the full run reads (data.name, data.load_size and
    the probe's dataset and test split): the smoke form reads genviews_shapes instead."""
    module = importlib.import_module(f"configs.paper.{name}")
    full, config = module.get_config(), module.get_config("smoke" if smoke else None)
    for section, key in (("data", "name"), ("data", "load_size"), ("eval", "dataset"),
                         ("eval", "test_split")):
        config[section][key] = full[section][key]
    return config


def test_imagenet100_real_smoke_run_trains_and_probes_on_imagenet100(imagenet, tmp_path):
    from evaluators import registry
    from tasks import loop

    config = _paper_config("imagenet100_real", smoke=True)
    assert (config.data.source, config.data.name, config.data.load_size, config.eval.dataset,
            config.eval.test_split) == ("real", "imagenet100", 128, "imagenet100", "validation")
    config.data.data_dir = imagenet  # --config.data.data_dir=DIR
    workdir = str(tmp_path / "in100_real")
    last = loop.train(config, workdir)
    assert np.isfinite(last["loss"]) and 0 <= last["online_acc"] <= 1
    # The paper's probe (augmented images, batch by batch) and kNN (features extracted in
    # order), from the run's own data_dir; the L-BFGS and few-shot probes read the same
    # features as kNN.
    result = registry.evaluate(workdir, evaluators=["linear_probe_genrep", "knn"])
    hundred = set(datasets.imagenet100_classes())
    assert (result["dataset"], result["train_split"], result["test_split"]) == (
        "imagenet100", "train", "validation")
    assert result["num_train"] == sum(_synset(n) in hundred for n in _stored(imagenet, "train"))
    assert result["num_test"] == sum(_synset(n) in hundred
                                     for n in _stored(imagenet, "validation"))
    for part in ("linear_probe_genrep", "knn"):
        assert np.isfinite(result[part]["top1"]) and 0 <= result[part]["top1"] <= 100, part


def test_imagenet100_biggan_probes_through_the_same_keys():
    # Its training draws generated views only (data.source=generator): no real image. Its
    # probe reads ImageNet-100 under the same keys as the real-data run's, which the test
    # above trains and probes. (Training its smoke form, a random BigGAN-deep-128, and
    # probing it on this data passes too, but takes ~40 s of compiling on 2 cores.)
    for smoke in (True, False):
        real = _paper_config("imagenet100_real", smoke=smoke)
        config = _paper_config("imagenet100_biggan_supcon", smoke=smoke)
        assert config.data.source == "generator"
        assert config.data.to_dict() == {**real.data.to_dict(), "source": "generator"}
        assert config.eval.to_dict() == real.eval.to_dict()
        assert (config.data.name, config.eval.dataset, config.eval.test_split) == (
            "imagenet100", "imagenet100", "validation")
