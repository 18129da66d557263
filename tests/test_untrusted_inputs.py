"""Directories and files from elsewhere run no code: a crafted TFDS dataset or export
directory whose features name a module of its own, and a PyTorch checkpoint carrying
a pickle payload. Each payload, if it ran, would write a marker file."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from errors import UserError

PAYLOAD = """
import pathlib
pathlib.Path({marker!r}).write_text("the payload ran")
"""


def _crafted_dataset(tmp_path, monkeypatch):
    """A real TFDS directory (image, label) whose features.json names the module
    `genviews_payload`, which is importable (its directory is on sys.path)."""
    import tensorflow_datasets as tfds

    marker = tmp_path / "payload_ran"
    modules = tmp_path / "modules"
    modules.mkdir()
    (modules / "genviews_payload.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(modules))
    examples = [(i, {"image": np.zeros((8, 8, 3), np.uint8), "label": i % 2}) for i in range(4)]
    builder = tfds.dataset_builders.store_as_tfds_dataset(
        name="crafted", version="1.0.0", data_dir=str(tmp_path / "tfds"),
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(8, 8, 3)),
            "label": tfds.features.ClassLabel(num_classes=2)}),
        split_datasets={"train": examples}, disable_shuffling=True)
    directory = str(builder.data_dir)
    path = os.path.join(directory, "features.json")
    with open(path) as f:
        features = json.load(f)
    features["featuresDict"]["features"]["label"]["pythonClassName"] = "genviews_payload.Label"
    with open(path, "w") as f:
        json.dump(features, f)
    return directory, marker


def test_a_crafted_dataset_directory_is_refused_and_its_payload_never_runs(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from data import datasets, export

    directory, marker = _crafted_dataset(tmp_path, monkeypatch)
    with pytest.raises(UserError, match="genviews_payload.Label"):
        datasets.load(directory, "train", image_size=8)  # eval.py --dataset DIR, prune --dataset
    with pytest.raises(UserError, match="genviews_payload.Label"):
        export.read(directory)  # data.source=EXPORT_DIR reads through export.read
    assert not marker.exists()
    # The threat is real: TFDS itself imports the module the directory names.
    with pytest.raises(Exception):  # noqa: B017 - the payload defines no class; TFDS then fails
        tfds.builder_from_directory(directory)
    assert marker.read_text() == "the payload ran"


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_never_runs(tmp_path):
    import pickle

    from models.convert import ConversionError, read_torch_state_dict

    marker = tmp_path / "payload_ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))  # creating the file is the payload

    import torch

    path = tmp_path / "pytorch_model.bin"
    torch.save({"weight": torch.zeros(2), "extra": Payload()}, path, pickle_protocol=2)
    with pytest.raises(ConversionError, match="could not read checkpoint"):
        read_torch_state_dict(str(path))
    assert not marker.exists()
    # The same file runs its payload under a plain unpickler.
    with open(path, "rb") as f:
        try:
            torch.load(f, weights_only=False)
        except (pickle.UnpicklingError, Exception):  # noqa: BLE001 - only the side effect matters
            pass
    assert marker.exists()
