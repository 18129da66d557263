"""Shared fixtures: one prepared copy of the embedded dataset for the whole session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding genviews_shapes, prepared once for all test workers
    ($GENVIEWS_TEST_TFDS_DIR, or a directory shared by the pytest-xdist workers)."""
    from filelock import FileLock

    from data import datasets

    path = os.environ.get("GENVIEWS_TEST_TFDS_DIR")
    if not path:
        root = tmp_path_factory.getbasetemp()
        worker = os.environ.get("PYTEST_XDIST_WORKER")  # set in pytest-xdist's workers
        path = str((root.parent if worker else root) / "tfds")
    with FileLock(path.rstrip("/") + ".lock"):  # the other worker waits, then finds it prepared
        datasets.load("genviews_shapes", "test", image_size=32, data_dir=path, max_examples=10)
    return path
