"""Converts published generator checkpoints into genviews' generator format.

    python -m models.convert biggan --checkpoint pytorch_model.bin \\
        [--config config.json] --out DIR [--overwrite]

reads a `pytorch-pretrained-biggan` checkpoint (the published BigGAN-deep
128/256/512 `pytorch_model.bin` and its `config.json`), and

    python -m models.convert bigbigan --checkpoint MODULE_DIR --out DIR [--overwrite]

reads the generator of a BigBiGAN TF-Hub module (`deepmind/bigbigan-resnet50/1`
or `bigbigan-revnet50x4/1`, unpacked: MODULE_DIR/variables/variables.*); both
write DIR so that `models.generators.load(DIR)` returns the generator with its
weights. Each family is one subcommand; PyTorch (`pip install genviews[convert]`)
and TensorFlow are imported only while a checkpoint is read.

Everything is read and checked before anything is written, and DIR appears by
one rename of a finished temporary directory, so a failed conversion never
leaves a DIR that `load` would accept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from models import generators
from models.generators import bigbigan, biggan


class ConversionError(Exception):
    """A checkpoint or config that cannot be converted; the message says why."""


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """The tensors of a `torch.save`d state dict at `path`, as float32/int NumPy arrays.

    Uses `torch.load(weights_only=True)`, so no code in the file is executed.
    """
    if not os.path.isfile(path):
        raise ConversionError(f"checkpoint {path} does not exist")
    try:
        import torch
    except ImportError as e:
        raise ConversionError(
            "reading PyTorch checkpoints needs torch: pip install 'genviews[convert]'") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many exception types for bad files
        raise ConversionError(f"could not read checkpoint {path}: {type(e).__name__}: {e}") from e
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConversionError(
            f"checkpoint {path} holds a {type(state).__name__}, not a state dict of tensors")
    out = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f"checkpoint {path}: entry {key!r} is a {type(value).__name__}, not a tensor")
        out[key] = value.detach().cpu().float().numpy() if value.is_floating_point() \
            else value.cpu().numpy()
    return out


def read_tf_checkpoint(path: str) -> tuple[dict[str, tuple[int, ...]], Callable[[str], np.ndarray]]:
    """(variable name -> shape, name -> value) of a TF checkpoint, read lazily.

    `path` is a TF-Hub (TF1) module directory, whose variables are
    `path/variables/variables.{index,data-*}`, or a checkpoint prefix itself.
    """
    module_prefix = os.path.join(path, "variables", "variables")
    if os.path.isdir(path):
        if not os.path.isfile(module_prefix + ".index"):
            raise ConversionError(
                f"{path} is not an unpacked TF-Hub module: {module_prefix}.index is missing")
        prefix = module_prefix
    elif os.path.isfile(path + ".index"):
        prefix = path
    else:
        raise ConversionError(f"checkpoint {path} does not exist (expected a TF-Hub module "
                              "directory or a TF checkpoint prefix)")
    try:
        import tensorflow as tf
    except ImportError as e:
        raise ConversionError("reading TF-Hub modules needs tensorflow: pip install tensorflow-cpu") from e
    try:
        reader = tf.train.load_checkpoint(prefix)
        shapes = {k: tuple(v) for k, v in reader.get_variable_to_shape_map().items()}
    except Exception as e:  # TF raises many error types for bad files
        raise ConversionError(f"could not read checkpoint {prefix}: {type(e).__name__}: {e}") from e

    def read(name: str) -> np.ndarray:
        try:
            return np.asarray(reader.get_tensor(name))
        except Exception as e:
            raise ConversionError(f"could not read variable {name} of {prefix}: "
                                  f"{type(e).__name__}: {e}") from e

    return shapes, read


def _read_json(path: str) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise ConversionError(f"could not read config {path}: {e}") from e
    if not isinstance(value, dict):
        raise ConversionError(f"config {path} is not a JSON object")
    return value


def write_generator(out_dir: str, generator: Any, params: Any, overwrite: bool = False) -> None:
    """Saves with `models.generators.save` into a temporary sibling, then renames it to DIR."""
    out_dir = os.path.abspath(out_dir)
    if os.path.exists(out_dir) and (not os.path.isdir(out_dir) or os.listdir(out_dir)):
        if not overwrite:
            raise ConversionError(f"{out_dir} exists and is not empty (pass --overwrite)")
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".partial-", dir=parent)
    try:
        generators.save(tmp, generator, params)
        if os.path.lexists(out_dir):
            old = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".old-", dir=parent)
            os.replace(out_dir, os.path.join(old, "previous"))
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)


def convert_biggan(checkpoint: str, config: str | None, out: str, overwrite: bool = False,
                   log: Callable[[str], Any] = print) -> dict:
    """Converts a pytorch-pretrained-biggan checkpoint to DIR `out`; returns a summary dict.

    `config` defaults to config.json beside the checkpoint (the published layout).
    """
    start = time.time()
    config = config or os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.json")
    try:
        cfg = biggan.BigGANConfig.from_dict(_read_json(config))
    except (TypeError, ValueError) as e:
        raise ConversionError(f"bad config {config}: {e}") from e
    log(f"config {config}: BigGAN-deep {cfg.output_dim} px, {len(cfg.layers)} blocks, "
        f"channel width {cfg.channel_width}, {cfg.num_classes} classes, z {cfg.z_dim}")

    size_mb = os.path.getsize(checkpoint) / 1e6 if os.path.isfile(checkpoint) else 0.0
    log(f"reading {checkpoint} ({size_mb:.0f} MB)")
    state = read_torch_state_dict(checkpoint)
    log(f"checking {len(state)} tensors against the config and folding spectral norms")
    try:
        variables = biggan.params_from_state_dict(state, cfg)
    except biggan.CheckpointMismatchError as e:
        raise ConversionError(f"{checkpoint}: {e}") from e
    return _write(biggan.build(cfg.to_dict()), variables, checkpoint, out, overwrite, start, log,
                  f"BigGAN-deep {cfg.output_dim} px, {cfg.num_classes} classes")


def convert_bigbigan(checkpoint: str, out: str, overwrite: bool = False,
                     log: Callable[[str], Any] = print) -> dict:
    """Converts the generator of a BigBiGAN TF-Hub module to DIR `out`; returns a summary dict.

    The widths are read off the checkpoint (the published modules: channel width
    96, z ∈ R^120, a 128-d embedding); then every variable the generator needs is
    checked for presence and shape before any is read.
    """
    start = time.time()
    log(f"reading the variables of {checkpoint}")
    shapes, read = read_tf_checkpoint(checkpoint)
    try:
        scope = bigbigan.find_scope(shapes)
        cfg = bigbigan.config_from_shapes(shapes, scope)
        log(f"BigBiGAN generator under {scope}: {cfg.resolution} px, channel width "
            f"{cfg.channel_width}, z {cfg.z_dim}; checking {len(shapes)} variables and "
            "folding spectral norms")
        variables = bigbigan.params_from_tf_variables(read, shapes, cfg, scope)
    except bigbigan.CheckpointMismatchError as e:
        raise ConversionError(f"{checkpoint}: {e}") from e
    return _write(bigbigan.build(cfg.to_dict()), variables, checkpoint, out, overwrite, start, log,
                  f"BigBiGAN {cfg.resolution} px, unconditional")


def _write(generator: Any, variables: Any, checkpoint: str, out: str, overwrite: bool,
           start: float, log: Callable[[str], Any], what: str) -> dict:
    """Writes DIR `out` and logs and returns the conversion's summary."""
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(variables["params"]))
    log(f"writing {out}")
    write_generator(out, generator, variables, overwrite=overwrite)
    seconds = time.time() - start
    log(f"converted {what} ({n_params / 1e6:.1f}M parameters) from {checkpoint} to {out} "
        f"in {seconds:.1f}s")
    return {"family": generator.family, "resolution": generator.resolution, "params": n_params,
            "checkpoint": checkpoint, "out": os.path.abspath(out), "seconds": seconds}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.convert",
        description="Convert a published generator checkpoint to genviews' format "
                    "(models.generators.load(DIR) reads the result).")
    sub = parser.add_subparsers(dest="family", required=True, metavar="FAMILY")
    p = sub.add_parser(
        "biggan", help="BigGAN-deep 128/256/512 from pytorch-pretrained-biggan",
        description="BigGAN-deep from a pytorch-pretrained-biggan pytorch_model.bin "
                    "and its config.json.")
    p.add_argument("--checkpoint", required=True, help="pytorch_model.bin (a torch state dict)")
    p.add_argument("--config", default=None,
                   help="config.json of the checkpoint (default: beside --checkpoint)")
    p.add_argument("--out", required=True, help="output directory DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    p = sub.add_parser(
        "bigbigan", help="BigBiGAN's generator from a TF-Hub module (deepmind/bigbigan-*/1)",
        description="BigBiGAN's generator from an unpacked TF-Hub module directory "
                    "(saved_model.pb, variables/variables.*), e.g. deepmind/bigbigan-resnet50/1.")
    p.add_argument("--checkpoint", required=True,
                   help="the module directory (or its variables/variables checkpoint prefix)")
    p.add_argument("--out", required=True, help="output directory DIR")
    p.add_argument("--overwrite", action="store_true", help="replace a non-empty DIR")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0 ok, 1 conversion error)."""
    args = _parser().parse_args(argv)
    try:
        if args.family == "biggan":
            convert_biggan(args.checkpoint, args.config, args.out, overwrite=args.overwrite)
        elif args.family == "bigbigan":
            convert_bigbigan(args.checkpoint, args.out, overwrite=args.overwrite)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
