"""Real, labelled images from TFDS: the embedded default and any TFDS dataset.

`source` opens a split of any dataset as a random-access *source*, the unit Grain
reads (data/pipeline.py streams batches from it): `genviews_shapes` (the procedural
default, prepared locally on first use), `cifar10`, `stl10`, `imagenet2012`,
`imagenet100` (imagenet2012 restricted to the 100 classes of CMC and GenRep, listed
in `data/imagenet100.txt`), any other TFDS image classification dataset, or the
directory of a prepared TFDS dataset (DIR/NAME/VERSION). An export of generated
views (`python -m data.export`) opens as its anchor images, each labelled with the
class the generator was asked for (to probe or prune it).

TFDS datasets are read from array_record files through `tfds` data sources,
decoded example by example without TensorFlow; a dataset genviews prepares (on
first use) is written in that format. Host memory does not grow with the split:
a source holds file handles, and its labels only once they are asked for.
Images come out as uint8 HWC at a fixed `image_size` (shorter side resized,
centre crop) with integer labels. `load` reads a whole (small) split into memory,
for the work that needs every image at once (a generator's templates, a judge).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np

from data import export, tfds_dirs
from errors import ConfigError, UserError, describe

IMAGENET100 = "imagenet100"
SYNTHETIC = "synthetic"  # random images and labels, ImageNet-shaped, for timing steps
SYNTHETIC_EXAMPLES, SYNTHETIC_CLASSES = 1024, 1000
_IMAGENET100_FILE = os.path.join(os.path.dirname(__file__), "imagenet100.txt")
_READ_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A labelled split in memory: `images` (N, S, S, 3) uint8, `labels` (N,) int32.

    An export of generated views (data.export) has `images` (N, V, S, S, 3), the
    views of each instance, and their `latents` (N, V, z_dim). A Dataset is a
    source too (`read`), so the pipeline streams it like any other.
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    latents: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        batch = {"image": self.images[rows], "label": self.labels[rows]}
        if self.latents is not None:
            batch["z"] = self.latents[rows]
        return batch


class TfdsSource:
    """A split of a prepared TFDS dataset in array_record files, read example by example.

    `read(rows)` decodes those rows: `image` (k, S, S, 3) uint8 at `image_size`
    (`resize_and_crop`; grayscale as RGB) and `label` (k,) int32. Picklable: a
    Grain worker reopens the files itself.
    """

    def __init__(self, name: str, directory: str, split: str, image_size: int, num_classes: int):
        self.name, self.directory, self.split = name, directory, split
        self.image_size, self.num_classes = image_size, num_classes
        self._source = None
        self._length = len(self._open())

    def _open(self):
        if self._source is None:
            self._source = _data_source(self.directory, self.split)
        return self._source

    def __getstate__(self):
        return {**self.__dict__, "_source": None}

    def __len__(self) -> int:
        return self._length

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        items = self._open().__getitems__([int(r) for r in rows])
        labels = np.array([item["label"] for item in items], np.int32)
        if not self.image_size:  # as decoded, each at its own size (views.crop_from=original)
            return {"image": [_rgb(np.asarray(item["image"])) for item in items], "label": labels}
        images = [resize_and_crop(np.asarray(item["image"]), self.image_size) for item in items]
        return {"image": np.stack(images), "label": labels}

    def _label_cache(self) -> str:
        return os.path.join(self.directory, f"genviews-labels-{self.split}.npy".replace("/", "_"))

    def _cached_labels(self) -> np.ndarray | None:
        """The split's labels kept beside it, if a whole, current copy is there."""
        try:
            labels = np.load(self._label_cache())
        except (OSError, ValueError):  # none, or a damaged copy: read them again
            return None
        return labels if labels.shape == (len(self),) else None

    def labels_at(self, rows: np.ndarray) -> np.ndarray:
        """The labels of `rows` (int32), without decoding an image: from the labels of the
        whole split when they were read, else from those rows' records only."""
        if "labels" in self.__dict__ or self._cached_labels() is not None:
            return self.labels[rows]
        return self._read_labels(rows)

    def _read_labels(self, rows: np.ndarray) -> np.ndarray:
        import tensorflow_datasets as tfds

        labels_only = _data_source(self.directory, self.split,
                                   decoders={"image": tfds.decode.SkipDecoding()})
        return tfds_dirs.label_column(labels_only, rows, _READ_CHUNK).astype(np.int32)

    @functools.cached_property
    def labels(self) -> np.ndarray:
        """All labels of the split (N,) int32, without decoding an image. Reading them reads
        every record (ImageNet's train split: ~140 GB), so they are kept beside the prepared
        dataset in genviews-labels-SPLIT.npy once read, where the directory is writable."""
        cached = self._cached_labels()
        if cached is not None:
            return cached
        cache = self._label_cache()
        labels = self._read_labels(np.arange(len(self)))
        import tempfile

        try:  # written whole under a unique name, then renamed: no reader sees half of it
            fd, scratch = tempfile.mkstemp(suffix=".npy", dir=self.directory)
            with os.fdopen(fd, "wb") as f:
                np.save(f, labels)
            os.replace(scratch, cache)
        except OSError:
            pass  # a read-only dataset directory: read them again next time
        return labels


def _data_source(directory: str, split: str, decoders=None):
    """`tfds` random-access source of a prepared dataset directory's split."""
    from tensorflow_datasets.core.file_adapters import FileFormat

    builder = tfds_dirs.open_builder(directory)
    if builder.info.file_format != FileFormat.ARRAY_RECORD:
        raise UserError(
            f"{directory} holds {builder.info.file_format.value} files; genviews reads array_record "
            "(random access, for Grain): prepare it again with file_format='array_record' (see the "
            "README, 'Real datasets')")
    try:
        return builder.as_data_source(split=split, decoders=decoders)
    except ValueError as e:
        raise ConfigError(f"dataset {builder.name!r} has no split {split!r}: {e}") from None


class Rows:
    """Rows `rows` of a source, in that order, optionally under other `labels` (a prefix for
    max_examples, the imagenet100 classes, a pruned subset)."""

    def __init__(self, base, rows: np.ndarray, *, labels: np.ndarray | None = None,
                 split: str | None = None, num_classes: int | None = None):
        self.base, self.rows = base, np.asarray(rows, np.int64)
        self.name, self.split = base.name, split or base.split
        self.num_classes = num_classes or base.num_classes
        self._labels = None if labels is None else np.asarray(labels, np.int32)

    def __len__(self) -> int:
        return len(self.rows)

    @functools.cached_property
    def labels(self) -> np.ndarray:
        if self._labels is not None:
            return self._labels
        if hasattr(self.base, "labels_at"):  # a prefix of ImageNet reads only its own labels
            return self.base.labels_at(self.rows)
        return self.base.labels[self.rows]

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        rows = np.asarray(rows, np.int64)
        batch = self.base.read(self.rows[rows])
        if self._labels is not None:
            batch["label"] = self._labels[rows]
        return batch


class ExportSource:
    """An export of generated views as a source: for training, `image` (k, V, S, S, 3) (its
    first V views), `z` (k, V, z_dim) and `label`; as `anchors`, `image` (k, S, S, 3), the
    anchor images at `image_size`, and `label` (the class the generator was asked for)."""

    def __init__(self, directory: str, *, num_views: int = 0, image_size: int = 0):
        meta = export.require(directory)
        if num_views > meta["num_views"]:
            raise UserError(f"{directory} holds {meta['num_views']} views per anchor; {num_views} asked")
        self.directory = self.name = os.path.abspath(directory)
        self.split, self.num_classes = "train", meta["num_classes"]
        self.num_views, self.image_size = num_views, image_size
        self.z_dim = meta["z_dim"]
        self._length = len(export.source(directory))

    def __len__(self) -> int:
        return self._length

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        items = export.rows(self.directory, rows)
        label = items["label"].astype(np.int32)
        if self.num_views:
            return {"image": items["views"][:, :self.num_views], "label": label,
                    "z": items["views_z"][:, :self.num_views]}
        return {"image": np.stack([resize_and_crop(im, self.image_size) for im in items["anchor"]]),
                "label": label}

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return export.labels(self.directory).astype(np.int32)


class SyntheticSource:
    """`data.name=synthetic`: uniform random uint8 images and labels of 1000 classes, each a
    pure function of (split, index); `max_examples` of them, else 1024. Nothing to learn: it
    times a train step without TensorFlow or a prepared dataset (benchmarks/gpu.py)."""

    def __init__(self, split: str, image_size: int, max_examples: int = 0):
        self.name, self.split, self.num_classes = SYNTHETIC, split, SYNTHETIC_CLASSES
        self.image_size, self._length = image_size, max_examples or SYNTHETIC_EXAMPLES
        self._seed = list(split.encode())

    def __len__(self) -> int:
        return self._length

    def _example(self, i: int):
        rng = np.random.default_rng(self._seed + [int(i)])
        s = self.image_size
        return rng.integers(0, 256, (s, s, 3), dtype=np.uint8), rng.integers(0, SYNTHETIC_CLASSES)

    def read(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        examples = [self._example(r) for r in rows]
        return {"image": np.stack([e[0] for e in examples]),
                "label": np.array([e[1] for e in examples], np.int32)}

    @functools.cached_property
    def labels(self) -> np.ndarray:
        return self.read(np.arange(len(self)))["label"]


def imagenet100_classes() -> list[str]:
    """The 100 ImageNet synsets of CMC/GenRep, sorted as ImageFolder sorts them."""
    with open(_IMAGENET100_FILE) as f:
        return sorted(line.strip() for line in f if line.strip())


def _builder(name: str, data_dir: str | None):
    """The TFDS builder of dataset `name`, prepared (in array_record) if it was not yet."""
    import tensorflow_datasets as tfds

    tfds_name = "imagenet2012" if name == IMAGENET100 else name
    if os.path.isdir(name):
        # A prepared TFDS dataset directory (DIR/NAME/VERSION): read as it is, whatever its
        # builder; its features must be image and label (exports are read by ExportSource).
        return tfds_dirs.open_builder(name)
    if name.split("/")[0] == "genviews_shapes":
        from data import shapes  # its TFDS builder; built here without any download

        builder = shapes.builder(name, data_dir=data_dir or None)
    else:
        try:
            builder = tfds.builder(tfds_name, data_dir=data_dir or None, file_format="array_record")
        except tfds.core.registered.DatasetNotFoundError:
            raise ConfigError(
                f"unknown dataset {name!r} (config key data.name or eval.dataset): it is "
                "neither genviews_shapes, imagenet100, a TFDS dataset name nor a TFDS dataset "
                "directory") from None
    if builder.is_prepared():
        return builder
    from filelock import FileLock

    # Several processes (hosts, test workers) may find it unprepared: one prepares, the
    # others wait and find it prepared.
    os.makedirs(builder.data_dir_root, exist_ok=True)
    # Named by the TFDS dataset: imagenet100 and imagenet2012 prepare the same directory.
    with FileLock(os.path.join(builder.data_dir_root, f".{tfds_name.replace('/', '_')}.lock")):
        if not builder.is_prepared():
            _prepare(builder, name, tfds_name)
    return builder


def _prepare(builder, name: str, tfds_name: str) -> None:
    """Prepares the dataset (in array_record), or a one-line UserError naming it and where."""
    if name.startswith("genviews_shapes"):
        print(f"preparing {name} in {builder.data_dir} (once, about a minute per 50,000 images)",
              flush=True)
    try:
        builder.download_and_prepare()
    except Exception as e:  # network, manual download, disk: say which dataset and where
        raise UserError(
            f"dataset {tfds_name!r} is not prepared in {builder.data_dir} and preparing it "
            f"failed: {describe(e)}") from e


def _rgb(image: np.ndarray) -> np.ndarray:
    """HWC with 3 channels, from HW or HW1 grayscale."""
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def resize_and_crop(image: np.ndarray, image_size: int) -> np.ndarray:
    """uint8 HWC (or HW1) image -> (image_size, image_size, 3): the shorter side resized to
    image_size (bilinear, antialiased), then the central square; RGB from grayscale."""
    image = _rgb(image)
    h, w = image.shape[:2]
    if h == image_size and w == image_size:
        return image
    from PIL import Image

    scale = image_size / min(h, w)
    new_h, new_w = max(image_size, round(h * scale)), max(image_size, round(w * scale))
    resized = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - image_size) // 2, (new_w - image_size) // 2
    return resized[top:top + image_size, left:left + image_size]


def _imagenet100(base: TfdsSource, label_names: list[str]) -> Rows:
    """The rows of imagenet2012 whose class is one of the 100, relabelled 0..99 in sorted order."""
    index = {wnid: i for i, wnid in enumerate(imagenet100_classes())}
    lookup = np.array([index.get(wnid, -1) for wnid in label_names], np.int64)
    new = np.where(base.labels >= 0, lookup[np.maximum(base.labels, 0)], -1)  # -1: unlabelled
    keep = np.flatnonzero(new >= 0)
    return Rows(base, keep, labels=new[keep], num_classes=len(index))


def training_source(data, image_size: int | None = None):
    """The training images a run's `data` config names: data.name's data.split, at
    data.load_size (or data.image_size; `image_size` overrides both), its first
    data.max_examples, from data.data_dir (see source)."""
    if image_size is None:
        image_size = data.load_size or data.image_size
    return source(data.name, data.split, image_size=image_size, data_dir=data.data_dir,
                  max_examples=data.max_examples)


def source(name: str, split: str, *, image_size: int, data_dir: str = "", max_examples: int = 0):
    """Split `split` of dataset `name` as a random-access source at `image_size` (module doc):
    `len`, `read(rows)` -> {"image", "label"}, `labels`, `num_classes`, `name`, `split`.

    `split` is any TFDS split string ("train", "test", "train[:90%]", ...);
    `max_examples` > 0 keeps only the first examples (smoke runs, quick probes);
    `image_size` 0 reads a TFDS dataset's images as decoded, a list of HWC arrays.
    """
    if name == SYNTHETIC:
        return SyntheticSource(split, image_size, max_examples)
    if os.path.isdir(name) and export.metadata(name) is not None:
        if split != "train":
            raise UserError(f"{name} is an export of generated views: it has only the split "
                            f"'train' ({split!r} asked)")
        found = ExportSource(name, image_size=image_size)
    else:
        builder = _builder(name, data_dir)
        label_names = builder.info.features["label"].names
        found = TfdsSource(name, str(builder.data_dir), split, image_size,
                           100 if name == IMAGENET100 else len(label_names))
        if name == IMAGENET100:
            found = _imagenet100(found, label_names)
    return _first(found, max_examples)


def _first(found, max_examples: int):
    """The first `max_examples` rows of a source (all of them when 0 or more than it has)."""
    return Rows(found, np.arange(max_examples)) if 0 < max_examples < len(found) else found


def read_all(found) -> Dataset:
    """Every row of a source, in memory."""
    from tqdm import tqdm

    n = len(found)
    chunks = [found.read(np.arange(start, min(n, start + _READ_CHUNK)))
              for start in tqdm(range(0, n, _READ_CHUNK), desc=f"reading {found.split}",
                                unit="chunk", disable=n < 20 * _READ_CHUNK, dynamic_ncols=True)]
    rows = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
    return Dataset(name=found.name, split=found.split, images=rows["image"],
                   labels=rows["label"].astype(np.int32), num_classes=found.num_classes,
                   latents=rows.get("z"))


@functools.lru_cache(maxsize=8)
def load(name: str, split: str, *, image_size: int, data_dir: str = "",
         max_examples: int = 0) -> Dataset:
    """Split `split` of dataset `name` read into memory (`source`, then `read_all`): for small
    splits that some work needs whole, as a generator's templates or a judge's training set."""
    return read_all(source(name, split, image_size=image_size, data_dir=data_dir,
                           max_examples=max_examples))


def from_export(directory: str, *, num_views: int, max_examples: int = 0):
    """An export for training, as a source: `image` (k, num_views, S, S, 3), `z`, `label`."""
    return _first(ExportSource(directory, num_views=num_views), max_examples)
