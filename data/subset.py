"""The pruned-subset format: which rows of a dataset to train on, under which labels.

    OUT/indices.npy    the rows kept, in the order they were chosen
    OUT/labels.npy     the labels of all n rows of the dataset they were kept under
                       (noisy ones when label noise was added)
    OUT/summary.json   what made it (the dataset, the budget, ...); written last

`python -m evaluators.prune` and the pruning studies write it (`write`); training
reads it with the config key data.subset (`apply`).
"""

from __future__ import annotations

import json
import os

import numpy as np

from errors import ConfigError

INDICES, LABELS, SUMMARY = "indices.npy", "labels.npy", "summary.json"


def exists(directory: str) -> bool:
    """Whether `directory` holds a subset's rows (indices.npy)."""
    return os.path.isfile(os.path.join(directory, INDICES))


def complete(directory: str) -> bool:
    """Whether `directory` holds a whole subset (its summary is written last)."""
    return os.path.exists(os.path.join(directory, SUMMARY))


def write(out: str, indices: np.ndarray, labels: np.ndarray, summary: dict) -> None:
    """OUT as `apply` reads it: indices.npy (rows kept, in the order chosen), labels.npy
    (the labels of all n rows they were kept under) and summary.json (written last)."""
    os.makedirs(out, exist_ok=True)
    np.save(os.path.join(out, INDICES), indices)
    np.save(os.path.join(out, LABELS), labels)
    with open(os.path.join(out, SUMMARY), "w") as f:
        json.dump(summary, f, indent=2)


def indices(directory: str) -> np.ndarray:
    """The rows a subset kept, in the order they were chosen."""
    return np.load(os.path.join(directory, INDICES))


def apply(dataset, directory: str):
    """The rows of `dataset` (a source of data.datasets) selected into `directory`, in the order
    chosen, with the labels they were selected under, as a data.datasets.Rows. Config key
    data.subset."""
    from data import datasets

    paths = {k: os.path.join(directory, name) for k, name in (("indices", INDICES), ("labels", LABELS))}
    missing = [p for p in paths.values() if not os.path.isfile(p)]
    if missing:
        raise ConfigError(f"config key data.subset: {missing[0]} does not exist (a directory "
                          "written by python -m evaluators.prune is expected)")
    indices, labels = np.load(paths["indices"]), np.load(paths["labels"])
    summary_path = os.path.join(directory, SUMMARY)
    base = dataset
    while isinstance(base, datasets.Rows):  # an export's first max_examples rows, say
        base = base.base
    # an export: the same one?
    if isinstance(base, datasets.ExportSource) and os.path.isfile(summary_path):
        with open(summary_path) as f:
            source = json.load(f).get("dataset", "")
        if os.path.isdir(source) and os.path.abspath(source) != dataset.name:
            raise ConfigError(f"config key data.subset: {directory} was selected from {source}, "
                              f"not from data.source={dataset.name}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise ConfigError(f"config key data.subset: {paths['indices']} holds {indices.dtype}, "
                          "not row indices")
    if len(labels) != len(dataset):
        raise ConfigError(f"config key data.subset: {directory} was selected from {len(labels)} "
                          f"examples, but {dataset.name} ({dataset.split}) has {len(dataset)}")
    if indices.ndim != 1 or not len(indices) or indices.min() < 0 or indices.max() >= len(dataset):
        raise ConfigError(f"config key data.subset: {paths['indices']} is not a list of rows "
                          f"of a dataset of {len(dataset)} examples")
    return datasets.Rows(dataset, indices, labels=labels[indices], split=f"{dataset.split}/subset")
