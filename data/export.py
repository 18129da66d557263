"""Exported generated views: a TFDS dataset that a generator checkpoint and a seed define.

    python -m data.export --generator DIR --num_anchors N --num_views K --seed S --out OUT \
        [--latent gaussian --sigma 0.2 --sigmas 0.1,0.5 --truncation 1.0 --batch_size 64]

writes, for anchors i = 0..N−1, the anchor image G(z_i, y_i), its K view images,
their latents and the class as one TFDS dataset (split `train`, array_record
files) in OUT, and OUT/export.json (what made it). Anchor i is instance i of the
online views at step 0 with the same seed and view settings (data.views), so the
export is a pure function of (generator, seed, view settings); images are
rendered in fixed-size batches, so exporting twice gives the same bytes.
Training reads it back with `--config.data.source=OUT` (GenRep's offline mode:
the views are fixed, only the pixel transforms are drawn afresh).

An OUT that exists and is not empty is never written to: a finished export is
not overwritten, and the export is assembled in a temporary directory beside
OUT that replaces OUT only once complete.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from data import tfds_dirs, views  # noqa: E402
from errors import UserError, describe  # noqa: E402
from models import generators  # noqa: E402

META_FILE = "export.json"
FORMAT = "genviews_export/1"
_NAME, _VERSION = "genviews_export", "1.0.0"
_READ_CHUNK = 1024


def metadata(directory: str) -> dict | None:
    """OUT/export.json of an export, or None when `directory` holds none."""
    path = os.path.join(directory, META_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        meta = json.load(f)
    return meta if meta.get("format") == FORMAT else None


def _features(num_views: int, resolution: int, z_dim: int):
    import tensorflow_datasets as tfds

    # Raw uint8 tensors, zlib-compressed: lossless, deterministic, decoded without TensorFlow.
    zlib = tfds.features.Encoding.ZLIB
    images = lambda *shape: tfds.features.Tensor(  # noqa: E731
        shape=shape + (resolution, resolution, 3), dtype=np.uint8, encoding=zlib)
    return tfds.features.FeaturesDict({
        "anchor": images(),
        "views": images(num_views),
        "anchor_z": tfds.features.Tensor(shape=(z_dim,), dtype=np.float32),
        "views_z": tfds.features.Tensor(shape=(num_views, z_dim), dtype=np.float32),
        "label": tfds.features.Scalar(dtype=np.int64),
    })


def _renderer(generator, spec, seed: int):
    """index (B,) -> the batch's anchors, views (uint8), their latents and classes (jitted; the
    generator's parameters are an argument of the program, not constants folded into it)."""

    @jax.jit
    def render(params, index):
        g = generator
        inst = views.instances(views.example_keys(seed, 0, index), spec, z_dim=g.z_dim,
                               num_classes=g.num_classes)
        z = jnp.concatenate([inst["anchor"][:, None], inst["views"]], 1)  # (B, 1 + K, z)
        y = jnp.repeat(inst["label"], z.shape[1])
        images = g.apply(params, z.reshape(-1, g.z_dim), y, spec.truncation)
        images = views.to_uint8(images)
        images = images.reshape(z.shape[:2] + images.shape[1:])
        return {"anchor": images[:, 0], "views": images[:, 1:], "anchor_z": inst["anchor"],
                "views_z": inst["views"], "label": inst["label"]}

    return lambda index: render(generator.params, index)


def _examples(render, num_anchors: int, batch_size: int):
    """Yields (key, example) for anchors 0..N−1; every batch has the same shape (padded)."""
    from tqdm import tqdm

    with tqdm(total=num_anchors, unit="anchor", desc="exporting", dynamic_ncols=True) as bar:
        for start in range(0, num_anchors, batch_size):
            index = np.arange(start, start + batch_size, dtype=np.int32)
            batch = {k: np.asarray(v) for k, v in render(index).items()}
            batch["label"] = batch["label"].astype(np.int64)
            count = min(batch_size, num_anchors - start)
            for j in range(count):
                yield start + j, {k: v[j] for k, v in batch.items()}
            bar.update(count)


def _canonicalise(directory: str) -> None:
    """Re-serialises every record deterministically (map keys sorted).

    The TFDS writer serialises each tf.Example's feature map in an order that
    changes from process to process, so two exports of the same content would
    differ in their bytes; rewritten this way, the bytes depend on the content only.
    """
    import tensorflow as tf
    from array_record.python import array_record_module as array_record

    for path in sorted(glob.glob(os.path.join(directory, "*.array_record-*"))):
        reader = array_record.ArrayRecordReader(path)
        writer = array_record.ArrayRecordWriter(path + ".canonical", reader.writer_options_string())
        n = reader.num_records()
        for start in range(0, n, _READ_CHUNK):
            for record in reader.read(start, min(n, start + _READ_CHUNK)):
                example = tf.train.Example.FromString(record)
                writer.write(example.SerializeToString(deterministic=True))
        writer.close()
        reader.close()
        os.replace(path + ".canonical", path)


@dataclasses.dataclass(frozen=True)
class ExportSpec:
    """What defines an export besides the generator: seed, sizes and the latent views."""

    num_anchors: int
    num_views: int
    seed: int = 0
    latent: str = "gaussian"
    sigma: float = 0.2
    sigmas: tuple[float, ...] = ()
    truncation: float = 1.0
    batch_size: int = 64


def _check_request(generator_dir: str, out: str, e: ExportSpec) -> None:
    """Refuses bad numbers, a missing generator and a non-empty OUT, before any work."""
    for flag, value, low in (("--num_anchors", e.num_anchors, 1), ("--num_views", e.num_views, 2),
                             ("--batch_size", e.batch_size, 1), ("--seed", e.seed, 0)):
        if value < low:
            raise UserError(f"{flag} must be ≥ {low}, got {value}")
    if e.sigma < 0 or any(s < 0 for s in e.sigmas):
        raise UserError(f"--sigma and --sigmas must be ≥ 0, got {e.sigma} and {e.sigmas}")
    if e.truncation <= 0:
        raise UserError(f"--truncation must be > 0, got {e.truncation}")
    kinds = tuple(k for k in views.LATENT_KINDS if k != "steer")  # walks are not an export option yet
    if e.latent not in kinds:
        raise UserError(f"--latent {e.latent!r} is not one of {kinds}")
    if not os.path.isfile(os.path.join(generator_dir, "generator.json")):
        raise UserError(f"--generator {generator_dir}: no generator checkpoint there "
                        "(generator.json is missing; train one with configs/generator.py)")
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise UserError(f"--out {out} exists and is not empty; an export is never overwritten: "
                        "remove it or choose another --out")


def export(generator_dir: str, out: str, e: ExportSpec) -> dict:
    """Writes the export (see the module docstring) and returns its export.json content."""
    generator_dir, out = os.path.abspath(generator_dir), os.path.abspath(out)
    _check_request(generator_dir, out, e)
    import tensorflow_datasets as tfds

    g = generators.load(generator_dir)
    spec = views.ViewSpec(kind=e.latent, num_views=e.num_views, sigma=e.sigma, sigmas=e.sigmas,
                          truncation=e.truncation)
    try:
        views.check(spec, g.num_classes)
    except ValueError as err:
        raise UserError(f"--latent: {err}") from None
    meta = {"format": FORMAT, "generator": generator_dir, "family": g.family, **dataclasses.asdict(e),
            "z_dim": g.z_dim, "num_classes": g.num_classes, "resolution": g.resolution}
    meta["sigmas"] = list(e.sigmas)
    del meta["batch_size"]  # how it was computed, not what it holds

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=os.path.basename(out) + ".incomplete-", dir=parent)
    try:
        tfds.disable_progress_bar()  # ours counts anchors; TFDS's would count again
        builder = tfds.dataset_builders.store_as_tfds_dataset(
            name=_NAME, version=_VERSION, data_dir=scratch, file_format="array_record",
            features=_features(e.num_views, g.resolution, g.z_dim), disable_shuffling=True,
            split_datasets={"train": _examples(_renderer(g, spec, e.seed), e.num_anchors,
                                               e.batch_size)},
            description=f"genviews views of {generator_dir} (seed {e.seed}); see {META_FILE}")
        built = str(builder.data_dir)
        _canonicalise(built)
        with open(os.path.join(built, META_FILE), "w") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
        if os.path.isdir(out):
            os.rmdir(out)  # empty (checked above)
        os.replace(built, out)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return meta


@functools.lru_cache(maxsize=16)
def source(directory: str):
    """The random-access `tfds` source of an export's records (one per process; Grain workers
    open their own)."""
    builder = tfds_dirs.open_builder(directory)
    try:
        return builder.as_data_source(split="train")
    except Exception as e:  # noqa: BLE001 - any failure of the record reader means a damaged file
        raise _damaged(directory, e) from None


def _damaged(directory: str, e: Exception) -> UserError:
    return UserError(f"export {directory} cannot be read ({describe(e)}): it is damaged; "
                     "export it again into a new directory")


def rows(directory: str, indices) -> dict[str, np.ndarray]:
    """Rows `indices` of an export, each feature stacked: anchor, views, anchor_z, views_z, label."""
    try:  # a truncated or garbled record file fails deep in array_record: say which export
        items = source(directory).__getitems__([int(i) for i in indices])
    except UserError:
        raise
    except Exception as e:  # noqa: BLE001
        raise _damaged(directory, e) from None
    return {k: np.stack([item[k] for item in items]) for k in items[0]}


def read(directory: str, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
    """Rows [start, stop) of an export (`rows`), read in chunks."""
    n = len(source(directory))
    stop = n if stop is None else min(stop, n)
    chunks = [rows(directory, range(begin, min(stop, begin + _READ_CHUNK)))
              for begin in range(start, stop, _READ_CHUNK)]
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def labels(directory: str) -> np.ndarray:
    """The class of every anchor (N,), read without decoding an image."""
    import tensorflow_datasets as tfds

    skip = {k: tfds.decode.SkipDecoding() for k in ("anchor", "views")}
    try:
        labels_only = tfds_dirs.open_builder(directory).as_data_source(split="train", decoders=skip)
        return tfds_dirs.label_column(labels_only, range(len(labels_only)), _READ_CHUNK)
    except Exception as e:  # noqa: BLE001
        raise _damaged(directory, e) from None


def require(directory: str) -> dict:
    """OUT/export.json of an export; a UserError when `directory` holds none."""
    meta = metadata(directory)
    if meta is None:
        raise UserError(f"{directory} is not an export of python -m data.export ({META_FILE} is missing)")
    return meta


def main(argv) -> None:
    from absl import flags, logging

    if len(argv) > 1:
        raise UserError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.ERROR)  # TFDS warns about the folder it is still writing
    f = flags.FLAGS
    for name in ("generator", "out"):
        if not f[name].value:
            raise UserError(f"--{name} is required")
    try:
        sigmas = tuple(float(s) for s in f.sigmas.split(",") if s.strip())
    except ValueError:
        raise UserError(f"--sigmas must be numbers separated by commas, got {f.sigmas!r}") from None
    e = ExportSpec(num_anchors=f.num_anchors, num_views=f.num_views, seed=f.seed, latent=f.latent,
                   sigma=f.sigma, sigmas=sigmas, truncation=f.truncation, batch_size=f.batch_size)
    meta = export(f.generator, f.out, e)
    print(f"exported {meta['num_anchors']} anchors × {meta['num_views']} views "
          f"({meta['latent']}) to {os.path.abspath(f.out)}")


def _define_flags() -> None:
    from absl import flags

    flags.DEFINE_string("generator", None, "generator checkpoint directory")
    flags.DEFINE_string("out", None, "directory of the export (must not exist, or be empty)")
    flags.DEFINE_integer("num_anchors", 1000, "anchors (instances) to export")
    flags.DEFINE_integer("num_views", 2, "views per anchor (≥ 2)")
    flags.DEFINE_integer("seed", 0, "seed of the latents (as config key seed)")
    flags.DEFINE_string("latent", "gaussian", "latent view type (as config key views.latent)")
    flags.DEFINE_float("sigma", 0.2, "σ of the Gaussian / angular neighbours (views.sigma)")
    flags.DEFINE_string("sigmas", "", "comma-separated σ list of multi_sigma (views.sigmas)")
    flags.DEFINE_float("truncation", 1.0, "latent truncation (generator.truncation)")
    flags.DEFINE_integer("batch_size", 64, "anchors rendered per batch")


def _run(argv) -> None:
    try:
        main(argv)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(_run)
