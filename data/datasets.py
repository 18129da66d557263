"""Real, labelled images from TFDS: the embedded default and any TFDS dataset.

One function, `load`, serves every dataset: `genviews_shapes` (the procedural
default, prepared locally on first use), `cifar10`, `stl10`, `imagenet2012`,
`imagenet100` (imagenet2012 restricted to the 100 classes of CMC and GenRep,
listed in `data/imagenet100.txt`), any other TFDS image classification dataset,
or the directory of a prepared TFDS dataset (DIR/NAME/VERSION). An export of
generated views (`python -m data.export`) loads as its anchor images, each
labelled with the class the generator was asked for (to probe or prune it).

Images come back as uint8 NHWC arrays at a fixed `image_size` (shorter side
resized, centre crop), held in host memory, with integer labels. Training draws
batches by *global example index* (see `batches`), so a run sees the same
examples in the same order whatever the number of devices or processes; each
process reads only the rows of its own share of each global batch.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterator

import numpy as np

from data import export, tfds_dirs
from errors import ConfigError, UserError, describe

IMAGENET100 = "imagenet100"
SYNTHETIC = "synthetic"  # random images and labels, ImageNet-shaped, for timing steps
SYNTHETIC_EXAMPLES, SYNTHETIC_CLASSES = 1024, 1000
_IMAGENET100_FILE = os.path.join(os.path.dirname(__file__), "imagenet100.txt")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labelled split in memory: `images` (N, S, S, 3) uint8, `labels` (N,) int32.

    An export of generated views (data.export) has `images` (N, V, S, S, 3), the
    views of each instance, and their `latents` (N, V, z_dim).
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    latents: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)


def imagenet100_classes() -> list[str]:
    """The 100 ImageNet synsets of CMC/GenRep, sorted as ImageFolder sorts them."""
    with open(_IMAGENET100_FILE) as f:
        return sorted(line.strip() for line in f if line.strip())


def synthetic(split: str, image_size: int, max_examples: int = 0) -> Dataset:
    """`data.name=synthetic`: uniform random uint8 images and labels of 1000 classes, a pure
    function of the split's name (max_examples of them, else 1024). Nothing to learn: it
    times a train step without TensorFlow or a prepared dataset (benchmarks/gpu.py)."""
    n = max_examples or SYNTHETIC_EXAMPLES
    rng = np.random.default_rng(list(split.encode()))
    images = rng.integers(0, 256, (n, image_size, image_size, 3), dtype=np.uint8)
    labels = rng.integers(0, SYNTHETIC_CLASSES, n).astype(np.int32)
    return Dataset(SYNTHETIC, split, images, labels, SYNTHETIC_CLASSES)


def _builder(name: str, data_dir: str | None):
    import tensorflow_datasets as tfds

    tfds_name = "imagenet2012" if name == IMAGENET100 else name
    if os.path.isdir(name):
        # A prepared TFDS dataset directory (DIR/NAME/VERSION): read as it is, whatever its
        # builder; its features must be image and label (exports are read by `load` itself).
        return tfds_dirs.open_builder(name)
    if name == "genviews_shapes":
        from data import shapes  # its TFDS builder; built here without any download

        builder = shapes.GenviewsShapes(data_dir=data_dir or None)
    else:
        try:
            builder = tfds.builder(tfds_name, data_dir=data_dir or None)
        except tfds.core.registered.DatasetNotFoundError:
            raise ConfigError(
                f"unknown dataset {name!r} (config key data.name or eval.dataset): it is "
                "neither genviews_shapes, imagenet100, a TFDS dataset name nor a TFDS dataset "
                "directory") from None
    if not builder.is_prepared():
        if name == "genviews_shapes":
            print(f"preparing {name} in {builder.data_dir} (once, about a minute)", flush=True)
        try:
            builder.download_and_prepare()
        except Exception as e:  # network, manual download, disk: say which dataset and where
            raise UserError(
                f"dataset {tfds_name!r} is not prepared in {builder.data_dir} and preparing it "
                f"failed: {describe(e)}") from e
    return builder


def resize_and_crop(image, image_size: int):
    import tensorflow as tf

    if image.shape[0] == image_size and image.shape[1] == image_size:
        return image
    shape = tf.shape(image)[:2]
    scale = image_size / tf.cast(tf.reduce_min(shape), tf.float32)
    new = tf.cast(tf.round(tf.cast(shape, tf.float32) * scale), tf.int32)
    new = tf.maximum(new, image_size)
    image = tf.image.resize(image, new, method="bilinear", antialias=True)
    top = (new[0] - image_size) // 2
    left = (new[1] - image_size) // 2
    image = image[top:top + image_size, left:left + image_size]
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


@functools.lru_cache(maxsize=8)
def load(name: str, split: str, *, image_size: int, data_dir: str = "",
         max_examples: int = 0) -> Dataset:
    """Loads `split` of dataset `name` into memory at `image_size` (see module doc).

    `split` is any TFDS split string ("train", "test", "train[:90%]", ...);
    `max_examples` > 0 keeps only the first examples (smoke runs, quick probes).
    """
    if name == SYNTHETIC:
        return synthetic(split, image_size, max_examples)
    import tensorflow as tf
    import tensorflow_datasets as tfds

    tf.config.set_visible_devices([], "GPU")  # TF only decodes; the accelerators are JAX's
    if os.path.isdir(name) and export.metadata(name) is not None:
        return _export_anchors(name, split, image_size=image_size, max_examples=max_examples)
    builder = _builder(name, data_dir)
    if max_examples:
        split = f"{split}[:{max_examples}]" if "[" not in split else split
    try:
        ds = builder.as_dataset(split=split, shuffle_files=False)
    except ValueError as e:
        raise ConfigError(f"dataset {name!r} has no split {split!r}: {e}") from None
    label_names = builder.info.features["label"].names
    keep = None
    if name == IMAGENET100:
        wanted = imagenet100_classes()
        index = {wnid: i for i, wnid in enumerate(wanted)}
        lookup = np.full(len(label_names), -1, np.int64)
        for i, wnid in enumerate(label_names):
            lookup[i] = index.get(wnid, -1)
        keep = tf.constant(lookup)
        ds = ds.map(lambda ex: {**ex, "label": tf.gather(keep, ex["label"])})
        ds = ds.filter(lambda ex: ex["label"] >= 0)
    ds = ds.map(lambda ex: (resize_and_crop(ex["image"], image_size), ex["label"]),
                num_parallel_calls=tf.data.AUTOTUNE)
    images, labels = [], []
    for image_batch, label_batch in tfds.as_numpy(ds.batch(4096)):
        if image_batch.shape[-1] == 1:  # grayscale datasets (mnist-like) as RGB
            image_batch = np.repeat(image_batch, 3, axis=-1)
        images.append(image_batch)
        labels.append(label_batch)
    num_classes = 100 if name == IMAGENET100 else len(label_names)
    return Dataset(name=name, split=split, images=np.concatenate(images),
                   labels=np.concatenate(labels).astype(np.int32), num_classes=num_classes)


def _export_anchors(directory: str, split: str, *, image_size: int, max_examples: int = 0) -> Dataset:
    """An export's anchor images as a labelled dataset (to probe or prune it), at `image_size`;
    each label is the class the generator was asked for."""
    rows, meta = export.anchors(directory, split, max_examples=max_examples)
    images = rows["anchor"]
    if images.shape[1] != image_size:
        images = np.stack([np.asarray(resize_and_crop(im, image_size)) for im in images])
    return Dataset(name=os.path.abspath(directory), split="train", images=images,
                   labels=rows["label"].astype(np.int32), num_classes=meta["num_classes"])


def from_export(directory: str, *, num_views: int, max_examples: int = 0) -> Dataset:
    """An export for training: `images` (N, num_views, S, S, 3) (its first num_views views),
    `labels`, and `latents` (N, num_views, z_dim)."""
    rows, meta = export.training_rows(directory, num_views=num_views, max_examples=max_examples)
    return Dataset(name=os.path.abspath(directory), split="train", images=rows["views"],
                   labels=rows["label"].astype(np.int32), num_classes=meta["num_classes"],
                   latents=rows["views_z"])


def batches(dataset: Dataset, global_batch: int, *, seed: int, start_step: int = 0,
            process_index: int = 0, process_count: int = 1) -> Iterator[dict]:
    """Yields this process's share of each global batch, from step `start_step` on.

    Epoch e visits the examples in the order `permutation(seed, e)`; global batch
    t holds positions [t·B, (t+1)·B) of that endless sequence. Process p reads only
    rows [p·B/P, (p+1)·B/P) of each global batch. Each item: `image` (uint8),
    `label`, `index` (the example's position in the global stream, which keys its
    randomness) and, for an export of generated views, `z` (the views' latents).
    """
    n = len(dataset)
    if global_batch % process_count:
        raise ValueError(f"train.batch_size={global_batch} does not divide over {process_count} processes")
    local = global_batch // process_count
    step = start_step
    cached_epoch, order = -1, None
    while True:
        positions = step * global_batch + process_index * local + np.arange(local)
        epochs = positions // n
        rows = np.empty(local, np.int64)
        for epoch in np.unique(epochs):
            if epoch != cached_epoch:
                cached_epoch = int(epoch)
                order = np.random.default_rng([seed, cached_epoch]).permutation(n)
            mask = epochs == epoch
            rows[mask] = order[positions[mask] % n]
        batch = {"image": dataset.images[rows], "label": dataset.labels[rows],
                 "index": positions.astype(np.int32)}
        if dataset.latents is not None:
            batch["z"] = dataset.latents[rows]
        yield batch
        step += 1
