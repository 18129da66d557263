"""The embedded default: a procedural dataset of coloured shapes, as a TFDS builder.

Nothing can be downloaded on the machines genviews is developed on, so the whole
pipeline runs by default on images it draws itself: 32×32 RGB, ten shape classes,
with random nuisance factors (foreground and background colour, scale, position,
rotation, a colour gradient and noise in the background). Every image is a pure
function of (split seed, index), drawn in vectorised NumPy with 3×3 supersampling
for anti-aliased edges, so preparing the dataset twice gives the same bytes.

It is a `tfds.core.GeneratorBasedBuilder` written in array_record files, so it
loads through exactly the same code as cifar10 or imagenet2012 (see
`data.datasets`). Its configs differ only in the size of the train split:
`genviews_shapes` (50,000) and `genviews_shapes/train500k` (500,000, whose first
50,000 are the default's), to measure that host memory does not grow with a dataset.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

CLASSES = ("circle", "square", "triangle", "star", "cross",
           "ring", "rhombus", "hexagon", "crescent", "semicircle")
RESOLUTION = 32
SPLIT_SIZES = {"train": 50_000, "test": 10_000}
_SPLIT_SEEDS = {"train": 1, "test": 2}
_SUPERSAMPLE = 3
_CHUNK = 250


def _inside(label: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether points (x, y) in the shape's own frame (unit size) are inside shape `label`."""
    r = np.hypot(x, y)
    phi = np.arctan2(y, x)
    name = CLASSES[label]
    if name == "circle":
        return r < 0.9
    if name == "square":
        return np.maximum(np.abs(x), np.abs(y)) < 0.75
    if name in ("triangle", "hexagon"):
        n = 3 if name == "triangle" else 6
        apothem = 0.5 if n == 3 else 0.8
        sector = 2 * np.pi / n
        local = np.mod(phi + np.pi / 2, sector) - sector / 2
        return r * np.cos(local) < apothem
    if name == "star":
        sector = 2 * np.pi / 5
        local = np.abs(np.mod(phi + np.pi / 2, sector) - sector / 2) / (sector / 2)
        return r < 0.4 + 0.6 * (1 - local) ** 1.5
    if name == "cross":
        return ((np.abs(x) < 0.28) & (np.abs(y) < 0.95)) | ((np.abs(y) < 0.28) & (np.abs(x) < 0.95))
    if name == "ring":
        return (r < 0.95) & (r > 0.55)
    if name == "rhombus":
        return np.abs(x) / 0.55 + np.abs(y) / 1.0 < 1
    if name == "crescent":
        return (r < 0.9) & (np.hypot(x - 0.45, y) > 0.7)
    if name == "semicircle":
        return (r < 0.95) & (y > -0.1)
    raise ValueError(label)


def render(labels: np.ndarray, rng: np.random.Generator, resolution: int = RESOLUTION) -> np.ndarray:
    """Draws one image per label with random nuisances: uint8 array (B, H, W, 3)."""
    b = len(labels)
    scale = rng.uniform(0.45, 0.8, b)  # half-size of the shape, in units of half the image
    centre = rng.uniform(-0.25, 0.25, (b, 2))
    angle = rng.uniform(0, 2 * np.pi, b)
    fg = rng.uniform(0, 1, (b, 3))
    bg = rng.uniform(0, 1, (b, 3))
    # Keep foreground and background apart in brightness so every shape is visible.
    too_close = np.abs(fg.mean(1) - bg.mean(1)) < 0.3
    bg[too_close] = 1.0 - fg[too_close]
    gradient = rng.uniform(-0.25, 0.25, (b, 2))
    noise = rng.normal(0, 0.04, (b, resolution, resolution, 3))

    s = resolution * _SUPERSAMPLE
    grid = ((np.arange(s) + 0.5) / s * 2 - 1).astype(np.float32)  # pixel centres in [-1, 1]
    gy, gx = np.meshgrid(grid, grid, indexing="ij")
    f32 = lambda a: a.astype(np.float32)[:, None, None]
    cos, sin = f32(np.cos(angle)), f32(np.sin(angle))
    dx, dy = gx[None] - f32(centre[:, 0]), gy[None] - f32(centre[:, 1])
    u = (cos * dx + sin * dy) / f32(scale)
    v = (-sin * dx + cos * dy) / f32(scale)
    mask = np.zeros((b, s, s), np.float32)
    for label in np.unique(labels):
        rows = labels == label
        mask[rows] = _inside(int(label), u[rows], v[rows])
    mask = mask.reshape(b, resolution, _SUPERSAMPLE, resolution, _SUPERSAMPLE).mean((2, 4))

    coarse = np.linspace(-1, 1, resolution)
    cy, cx = np.meshgrid(coarse, coarse, indexing="ij")
    shade = gradient[:, 0, None, None] * cx + gradient[:, 1, None, None] * cy
    background = bg[:, None, None, :] + shade[..., None] + noise
    image = mask[..., None] * fg[:, None, None, :] + (1 - mask[..., None]) * background
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def generate(split: str, start: int = 0, stop: int | None = None, size: int | None = None):
    """Yields (index, image, label) of `split` (of `size` examples; default SPLIT_SIZES) in
    order; a pure function of the index, whatever the size."""
    size = SPLIT_SIZES[split] if size is None else size
    stop = size if stop is None else stop
    for chunk_start in range(start - start % _CHUNK, stop, _CHUNK):
        chunk = chunk_start // _CHUNK
        rng = np.random.default_rng([_SPLIT_SEEDS[split], chunk])
        n = min(_CHUNK, size - chunk_start)
        labels = rng.integers(0, len(CLASSES), n)
        images = render(labels, rng)
        for j in range(n):
            index = chunk_start + j
            if start <= index < stop:
                yield index, images[j], int(labels[j])


@dataclasses.dataclass
class ShapesConfig(tfds.core.BuilderConfig):
    """A size of the train split (None: SPLIT_SIZES["train"]; the test split is always
    SPLIT_SIZES["test"])."""

    train_size: int | None = None


class GenviewsShapes(tfds.core.GeneratorBasedBuilder):
    """Procedural 32×32 coloured shapes in ten classes, drawn locally and deterministically."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "Ten shape classes, 50k train and 10k test images.",
                     "1.1.0": "The same images, in array_record files (random access for "
                              "Grain); config train500k."}
    BUILDER_CONFIGS = [ShapesConfig(name="default", description="50,000 train images"),
                       ShapesConfig(name="train500k", train_size=500_000,
                                    description="500,000 train images (the first 50,000 are the "
                                                "default's)")]
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(RESOLUTION, RESOLUTION, 3)),
                "label": tfds.features.ClassLabel(names=CLASSES),
            }),
            supervised_keys=("image", "label"),
            # Keep the generation order: example i of a split is `generate(split)`'s i-th.
            disable_shuffling=True,
            description=__doc__,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # nothing to download
        return {split: self._generate_examples(split) for split in SPLIT_SIZES}

    def _generate_examples(self, split):
        size = (self.builder_config.train_size if split == "train" else None) or SPLIT_SIZES[split]
        for index, image, label in generate(split, size=size):
            yield index, {"image": image, "label": label}


def builder(name: str = "genviews_shapes", data_dir: str | None = None) -> GenviewsShapes:
    """The builder of `genviews_shapes` or `genviews_shapes/CONFIG`, writing array_record."""
    config = name.split("/", 1)[1] if "/" in name else "default"
    names = [c.name for c in GenviewsShapes.BUILDER_CONFIGS]
    if config not in names:
        from errors import ConfigError

        raise ConfigError(f"config key data.name: {name!r}: genviews_shapes has the configs {names}")
    return GenviewsShapes(config=config, data_dir=data_dir, file_format="array_record")
