"""Shared fixtures: one prepared copy of the embedded dataset for the whole session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding genviews_shapes (prepared once; reused from $TFDS_DATA_DIR)."""
    path = os.environ.get("GENVIEWS_TEST_TFDS_DIR") or str(tmp_path_factory.mktemp("tfds"))
    from data import datasets
    datasets.load("genviews_shapes", "test", image_size=32, data_dir=path, max_examples=10)
    return path
