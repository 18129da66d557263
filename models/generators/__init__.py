"""Frozen generators behind one interface, and their on-disk format.

Every generator family (the small DCGAN that genviews pretrains itself, converted
public checkpoints such as BigGAN-deep and BigBiGAN) is stored the same way:

    DIR/generator.json   {"family": NAME, "hparams": {...}}
    DIR/generator/       an Orbax checkpoint of the variables pytree

and comes back from `load(DIR)` as a `Generator`: `params`, a pure
`apply(params, z, y, truncation=1.0)` that returns NHWC images in [-1, 1], and
`z_dim`, `num_classes` (0 for an unconditional generator) and `resolution`;
`init(key)` gives random params of the same structure (smoke runs, tests).

A family registers a `build(hparams) -> Generator` function (without params)
under its name with `register`; `load` looks the name up.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from typing import Any

import jax
import orbax.checkpoint as ocp

from errors import UserError

ApplyFn = Callable[..., jax.Array]


@dataclasses.dataclass(frozen=True)
class Generator:
    """A frozen generator: `apply(params, z, y, truncation)` -> images in [-1, 1]."""

    family: str
    hparams: dict
    params: Any
    apply: ApplyFn
    z_dim: int
    num_classes: int
    resolution: int
    init: Callable[[jax.Array], Any]  # key -> random params (smoke runs, tests)


_BUILDERS: dict[str, Callable[[dict], Generator]] = {}


def register(family: str):
    """Decorator: registers `build(hparams) -> Generator` (params=None) for a family."""

    def wrap(fn):
        _BUILDERS[family] = fn
        return fn

    return wrap


def families() -> list[str]:
    _import_families()
    return sorted(_BUILDERS)


def build(family: str, hparams: dict) -> Generator:
    """The generator of `family` with `hparams`, without parameters."""
    _import_families()
    if family not in _BUILDERS:
        raise ValueError(f"unknown generator family {family!r}; known: {sorted(_BUILDERS)}")
    return _BUILDERS[family](dict(hparams))


def save(directory: str, generator: Generator, params: Any) -> None:
    """Writes `params` of `generator` to DIR/generator/ and DIR/generator.json."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "generator")
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(path, params, force=True)
    checkpointer.wait_until_finished()
    meta = {"family": generator.family, "hparams": generator.hparams}
    tmp = os.path.join(directory, "generator.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, os.path.join(directory, "generator.json"))


def load(directory: str) -> Generator:
    """The generator stored in DIR (see the module docstring), with its params."""
    directory = os.path.abspath(directory)
    meta_path = os.path.join(directory, "generator.json")
    if not os.path.exists(meta_path):
        raise UserError(
            f"no generator checkpoint in {directory}: {meta_path} is missing "
            "(train one with configs/generator.py or convert one with models.convert)")
    with open(meta_path) as f:
        meta = json.load(f)
    generator = build(meta["family"], meta["hparams"])
    weights = os.path.join(directory, "generator")
    if not os.path.isdir(weights):
        raise UserError(f"generator checkpoint {directory} has generator.json but no weights: "
                        f"{weights} is missing")
    try:
        params = ocp.StandardCheckpointer().restore(weights)
    except Exception as e:  # Orbax/tensorstore: a truncated, garbled or incomplete directory
        first = " ".join(str(e).split())[:300]
        raise UserError(f"cannot read the generator weights {weights}: "
                        f"{type(e).__name__}: {first}") from None
    # On the default device once, not copied from host memory at every apply.
    return dataclasses.replace(generator, params=jax.device_put(params))


def _import_families() -> None:
    # Importing a family module runs its @register; kept lazy so that loading
    # one family does not import every other one.
    from models.generators import bigbigan, biggan, dcgan, resnet, sprites  # noqa: F401
