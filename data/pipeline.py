"""Grain pipelines: from a random-access source to this process's share of each global batch.

A source (data.datasets: a TFDS split, an export, rows of either, or a split in
memory) has `len` and `read(rows)`. Training draws batches by *global example
position*: epoch e visits the examples in the order `permutation(seed, e)`, and
global batch t holds positions [t·B, (t+1)·B) of that endless sequence, so a run
sees the same examples in the same order whatever the number of devices or
processes. Process p reads only rows [p·B/P, (p+1)·B/P) of each global batch.
Resuming at step t starts the same sequence at batch t: no state besides the step.

Grain runs it: a `MapDataset` over steps whose element t is this process's batch t
(`LocalBatch`), read and decoded in `workers` worker processes (0: threads of this
process) and prefetched while the train step runs. Host memory holds the batches
in flight and one epoch's permutation (8 bytes per example), not the dataset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from errors import ConfigError

_ENDLESS = 2**40  # steps in the MapDataset: more than any run takes


def positions(step: int, global_batch: int, process_index: int = 0,
              process_count: int = 1) -> np.ndarray:
    """Positions in the endless example sequence of process p's rows of global batch `step`."""
    local = global_batch // process_count
    return step * global_batch + process_index * local + np.arange(local, dtype=np.int64)


class LocalBatch:
    """step -> this process's batch: `image`, `label`, `index` (the example's position in the
    global stream, which keys its randomness) and, for an export, `z` (the views' latents).
    Picklable, for Grain's worker processes; each keeps the permutation of its latest epoch."""

    def __init__(self, source, global_batch: int, seed: int, process_index: int,
                 process_count: int, transform=None, with_rows: bool = False):
        self.source, self.global_batch, self.seed = source, global_batch, seed
        self.transform = transform  # (batch, positions) -> batch, in the worker (pixel.HostCrop)
        self.with_rows = with_rows  # add `row`: each example's row of the source
        self.process_index, self.process_count = process_index, process_count
        self._cache = (-1, None)  # (epoch, its permutation), replaced whole: threads share it

    def __getstate__(self):
        return {**self.__dict__, "_cache": (-1, None)}

    def order(self, epoch: int) -> np.ndarray:
        """The order in which epoch `epoch` visits the source's rows."""
        cached_epoch, cached = self._cache
        if cached_epoch != epoch:
            cached = np.random.default_rng([self.seed, epoch]).permutation(len(self.source))
            self._cache = (epoch, cached)
        return cached

    def rows(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows of the source, positions) of this process's share of global batch `step`."""
        n = len(self.source)
        where = positions(step, self.global_batch, self.process_index, self.process_count)
        epochs = where // n
        rows = np.empty(len(where), np.int64)
        for epoch in np.unique(epochs):
            mask = epochs == epoch
            rows[mask] = self.order(int(epoch))[where[mask] % n]
        return rows, where

    def __call__(self, step) -> dict[str, np.ndarray]:
        rows, where = self.rows(int(step))
        batch = self.source.read(rows)
        if self.transform is not None:
            batch = self.transform(batch, where)
        batch["label"] = np.asarray(batch["label"], np.int32)
        batch["index"] = where.astype(np.int32)
        if self.with_rows:
            batch["row"] = rows.astype(np.int32)
        return batch


def default_workers() -> int:
    """data.workers = -1: none on a CPU backend (the step has every core), else half the cores
    up to 16."""
    import jax

    if jax.default_backend() == "cpu":
        return 0
    return min(16, max(1, (os.cpu_count() or 2) // 2))


def batches(source, global_batch: int, *, seed: int, start_step: int = 0, process_index: int = 0,
            process_count: int = 1, workers: int = 0, prefetch: int = 2,
            transform=None, with_rows: bool = False) -> Iterator[dict]:
    """Yields this process's share of each global batch from step `start_step` on (module doc),
    read by `workers` Grain worker processes (0: `prefetch` threads here; -1: default_workers)
    and passed through `transform(batch, positions)` there, if given; `with_rows` adds
    `row`, each example's row of the source (per-example state, tasks/classifier.py)."""
    import grain

    if global_batch % process_count:
        raise ConfigError(f"config key train.batch_size: {global_batch} does not divide over "
                          f"{process_count} processes")
    if not len(source):
        raise ConfigError(f"config key data.name: {source.name} ({source.split}) has no examples")
    steps = grain.MapDataset.range(start_step, _ENDLESS).map(
        LocalBatch(source, global_batch, seed, process_index, process_count, transform, with_rows))
    yield from _run(steps, 0 if _in_memory(source) else workers, prefetch)


def _run(dataset, workers: int, prefetch: int) -> Iterator:
    """Iterates a Grain MapDataset in order: in `workers` processes (-1: default_workers), or
    in `prefetch` threads here when 0."""
    import grain

    workers = default_workers() if workers < 0 else workers
    stream = dataset.to_iter_dataset(grain.ReadOptions(num_threads=max(1, prefetch),
                                                       prefetch_buffer_size=max(1, prefetch)))
    if workers:
        _grain_flags_parsed()
        stream = stream.mp_prefetch(grain.MultiprocessingOptions(
            num_workers=workers, per_worker_buffer_size=max(1, prefetch)))
    iterator = iter(stream)
    try:
        yield from iterator
    finally:
        iterator.close()  # stops the threads and worker processes now, not at interpreter exit


def _grain_flags_parsed() -> None:
    """Grain's worker processes read Grain's absl flags; a caller without absl.app (a test,
    a notebook) has not parsed them, so their defaults are taken."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class _Block:
    """i -> rows [i·B, (i+1)·B) of a source (the last block may be shorter)."""

    def __init__(self, source, batch_size: int):
        self.source, self.batch_size = source, batch_size

    def __call__(self, i) -> dict[str, np.ndarray]:
        start = int(i) * self.batch_size
        return self.source.read(np.arange(start, min(len(self.source), start + self.batch_size)))


def in_order(source, batch_size: int, *, workers: int = 0, prefetch: int = 2) -> Iterator[dict]:
    """Every row of a source once, in order, in batches of `batch_size` (the last may be
    shorter), read by `workers` Grain processes (as `batches`) while the caller computes:
    feature extraction streams a split this way."""
    import grain

    blocks = grain.MapDataset.range(0, -(-len(source) // batch_size)).map(_Block(source, batch_size))
    yield from _run(blocks, 0 if _in_memory(source) else workers, prefetch)


def _in_memory(source) -> bool:
    """Whether `source` (or the source it takes rows of) holds its images in memory: then it is
    read here, never pickled whole into worker processes."""
    while hasattr(source, "base"):
        source = source.base
    return hasattr(source, "images")
