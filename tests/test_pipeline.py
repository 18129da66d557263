"""The Grain pipeline: global batch t holds the same examples for any number of processes,
epochs are permutations keyed by (seed, epoch), resuming at step t gives batch t, and Grain
worker processes give the same batches as threads. The reference is a NumPy loop over the
global positions."""

import numpy as np
import pytest

from data import datasets, pipeline
from errors import ConfigError


def _memory(n: int) -> datasets.Dataset:
    images = (np.arange(n) % 256).astype(np.uint8)[:, None, None, None].repeat(3, -1)
    return datasets.Dataset("x", "train", images, np.arange(n, dtype=np.int32), n)


def _reference_rows(step: int, global_batch: int, n: int, seed: int) -> np.ndarray:
    """The rows of global batch `step`, one position at a time."""
    rows = []
    for position in range(step * global_batch, (step + 1) * global_batch):
        epoch, offset = divmod(position, n)
        rows.append(np.random.default_rng([seed, epoch]).permutation(n)[offset])
    return np.array(rows)


def _take(stream, count):
    return [next(stream) for _ in range(count)]


def test_batches_follow_the_global_order_and_split_over_processes():
    ds = _memory(50)
    whole = _take(pipeline.batches(ds, 8, seed=3, start_step=4), 10)  # crosses epochs
    halves = [_take(pipeline.batches(ds, 8, seed=3, start_step=4, process_index=p,
                                     process_count=2), 10) for p in range(2)]
    for t, batch in enumerate(whole):
        np.testing.assert_array_equal(batch["label"], _reference_rows(4 + t, 8, 50, 3))
        np.testing.assert_array_equal(batch["index"], np.arange((4 + t) * 8, (5 + t) * 8))
        for key in ("image", "label", "index"):
            np.testing.assert_array_equal(
                batch[key], np.concatenate([halves[0][t][key], halves[1][t][key]]))
        assert batch["label"].dtype == np.int32 and batch["index"].dtype == np.int32


def test_with_rows_names_each_examples_row_of_the_source():
    ds = _memory(50)  # label = row
    for t, batch in enumerate(_take(pipeline.batches(ds, 8, seed=3, start_step=4, with_rows=True), 8)):
        np.testing.assert_array_equal(batch["row"], _reference_rows(4 + t, 8, 50, 3))
        np.testing.assert_array_equal(batch["row"], batch["label"])
        assert batch["row"].dtype == np.int32
    assert "row" not in next(pipeline.batches(ds, 8, seed=3))


def test_each_epoch_visits_every_example_once_and_resuming_gives_the_same_batches():
    ds = _memory(50)
    stream = _take(pipeline.batches(ds, 10, seed=1), 10)
    for epoch in range(2):
        seen = np.concatenate([b["label"] for b in stream[5 * epoch:5 * epoch + 5]])
        assert sorted(seen) == list(range(50))
    assert not np.array_equal(stream[0]["label"], stream[5]["label"])  # epochs differ
    resumed = _take(pipeline.batches(ds, 10, seed=1, start_step=7), 3)
    for a, b in zip(stream[7:10], resumed, strict=True):
        np.testing.assert_array_equal(a["label"], b["label"])


def test_rows_of_a_source_and_exports_latents_travel_with_their_rows():
    n = 30
    ds = datasets.Dataset("x", "train", np.zeros((n, 2, 4, 4, 3), np.uint8),
                          np.arange(n, dtype=np.int32), 3,
                          latents=np.arange(n, dtype=np.float32)[:, None, None].repeat(2, 1))
    kept = datasets.Rows(ds, np.arange(n)[::-1][:12], labels=np.arange(12) % 3)
    batch = next(pipeline.batches(kept, 6, seed=0))
    rows = _reference_rows(0, 6, 12, 0)
    np.testing.assert_array_equal(batch["label"], rows % 3)
    np.testing.assert_array_equal(batch["z"][:, 0, 0], (n - 1 - rows).astype(np.float32))


def test_worker_processes_give_the_same_batches_as_threads(tfds_dir):
    found = datasets.source("genviews_shapes", "test", image_size=32, data_dir=tfds_dir,
                            max_examples=200)
    threads = _take(pipeline.batches(found, 16, seed=2, start_step=11), 4)
    workers = pipeline.batches(found, 16, seed=2, start_step=11, workers=2)
    for a, b in zip(threads, _take(workers, 4), strict=True):
        for key in ("image", "label", "index"):
            np.testing.assert_array_equal(a[key], b[key])
    workers.close()
    reference = datasets.load("genviews_shapes", "test", image_size=32, data_dir=tfds_dir,
                              max_examples=200)
    rows = _reference_rows(11, 16, 200, 2)
    np.testing.assert_array_equal(threads[0]["image"], reference.images[rows])


def test_a_batch_that_does_not_divide_over_processes_is_a_config_error():
    with pytest.raises(ConfigError, match="train.batch_size"):
        next(pipeline.batches(_memory(10), 5, seed=0, process_count=2))


def test_host_crops_split_over_processes_as_the_whole_batch():
    """views.crop_from=original: each example's crops are keyed by its global position, so a
    process's share of the crops is that share of the 1-process batch's."""
    from data import pixel

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 40, 60, 3), dtype=np.uint8)
    ds = datasets.Dataset("x", "train", images, np.arange(20, dtype=np.int32), 20)
    crop = pixel.HostCrop(num_views=2, out_size=8, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3), seed=1)
    whole = next(pipeline.batches(ds, 8, seed=0, start_step=2, transform=crop))
    parts = [next(pipeline.batches(ds, 8, seed=0, start_step=2, process_index=p, process_count=2,
                                   transform=crop)) for p in range(2)]
    assert whole["image"].shape == (8, 2, 8, 8, 3)
    np.testing.assert_array_equal(whole["image"], np.concatenate([p["image"] for p in parts]))


def test_crop_from_original_needs_real_images_and_pixel_views():
    from configs import common
    from tasks.validate import validate

    for key, value in (("data.source", "generator"), ("views.pixel", "none"), ("views.crop_from", "x")):
        c = common.base()
        c.data.source, c.views.crop_from = "real", "original"
        c[key.split(".")[0]][key.split(".")[1]] = value
        with pytest.raises(ConfigError, match="views.crop_from"):
            validate(c)
