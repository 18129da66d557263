"""Opening a prepared TFDS dataset directory without running code that it names.

`tfds.builder_from_directory(DIR)` rebuilds the dataset's features from
DIR/features.json (and the features in DIR/dataset_info.json), importing the Python
module named by each feature's `pythonClassName`. A crafted directory that names a
module of its own, importable from where genviews runs (an export under the
repository root, say), would run that module's code. `open_builder` reads both files
first and accepts only TFDS's own feature classes (`tensorflow_datasets.core.features.*`);
anything else is a one-line UserError, raised before TFDS imports a thing.
"""

from __future__ import annotations

import json
import os

import numpy as np

from errors import UserError

TRUSTED_FEATURES = "tensorflow_datasets.core.features."
_DESCRIBING_FILES = ("features.json", "dataset_info.json")


def _class_names(node) -> set[str]:
    """Every `pythonClassName` (or `python_class_name`) value in a JSON tree."""
    if isinstance(node, dict):
        found = {v for k, v in node.items()
                 if k in ("pythonClassName", "python_class_name") and isinstance(v, str)}
        for value in node.values():
            found |= _class_names(value)
        return found
    if isinstance(node, list):
        return set().union(*(_class_names(v) for v in node)) if node else set()
    return set()


def check(directory: str) -> None:
    """Raises UserError if `directory`'s description names a feature class TFDS does not
    define, or cannot be read."""
    for name in _DESCRIBING_FILES:
        path = os.path.join(directory, name)
        if not os.path.exists(path):
            continue
        try:
            with open(path) as f:
                described = json.load(f)
        except (OSError, ValueError) as e:
            raise UserError(f"{path} cannot be read as JSON ({type(e).__name__}): the dataset "
                            "directory is damaged") from None
        foreign = sorted(n for n in _class_names(described) if not n.startswith(TRUSTED_FEATURES))
        if foreign:
            raise UserError(f"{path} names feature classes outside {TRUSTED_FEATURES}* "
                            f"({', '.join(foreign)}); genviews does not import code that a "
                            "dataset directory names")


def open_builder(directory: str):
    """`tfds.builder_from_directory(directory)`, after `check`."""
    import tensorflow_datasets as tfds

    check(directory)
    return tfds.builder_from_directory(directory)


def label_column(data_source, rows, chunk: int = 1024) -> np.ndarray:
    """The `label` feature of `rows` of an opened `tfds` data source (opened with its images'
    decoding skipped, so that only the records are read), int64."""
    rows = [int(r) for r in rows]
    return np.array([item["label"] for start in range(0, len(rows), chunk)
                     for item in data_source.__getitems__(rows[start:start + chunk])],
                    np.int64).reshape(-1)
