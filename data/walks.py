"""Steering walks: linear latent directions for pixel edits, and their on-disk format.

A walk `name` (data/edits.py: colour, zoom, shift_x, shift_y, rotate) has one
direction per parameter of its edit, a (WALK_DIMS[name], z_dim) array w; a step α
moves a latent to z + αᵀw ("On the steerability of GANs", Jahanian et al., ICLR
2020). tasks/steering.py learns the directions of a generator; views with
`views.latent=steer` then move each anchor by every walk with random steps.

    DIR/walks.json   {"z_dim": Z, "names": [...], "ranges": {...}, "generator": PATH}
    DIR/walks/       an Orbax checkpoint of {name: (dims, z_dim) direction}

A steering run's workdir is such a DIR, and this module is the one that reads
and writes it: `save`, and `load(DIR)`. A walk is only trained to imitate its
edit over the step ranges it saw, so views draw their steps from the ranges
stored with the walks.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

from data.edits import WALK_DIMS
from errors import UserError


@dataclasses.dataclass(frozen=True)
class StepRanges:
    """How far random steps go: colour ±color per channel, zoom by a factor in
    [1/zoom, zoom] (log-uniform), shifts ±shift of the side, rotation ±rotate degrees."""

    color: float = 0.5
    zoom: float = 4.0
    shift: float = 0.4
    rotate: float = 30.0

    @classmethod
    def of_config(cls, c) -> StepRanges:
        """The ranges `steer.color`, `steer.zoom`, `steer.shift`, `steer.rotate` of a config."""
        return cls(color=c.steer.color, zoom=c.steer.zoom, shift=c.steer.shift,
                   rotate=c.steer.rotate)

    def bound(self, name: str) -> float:
        """The largest step |α| of walk `name`, in data/edits.py's units."""
        return {"color": self.color, "zoom": math.log(self.zoom), "shift_x": self.shift,
                "shift_y": self.shift, "rotate": math.radians(self.rotate)}[name]


def sample_steps(key: jax.Array, names: tuple[str, ...], ranges: StepRanges) -> dict[str, jax.Array]:
    """Uniform random steps α per walk, in data/edits.py's units ({name: (dims,)})."""
    keys = jax.random.split(key, len(names))
    return {name: jax.random.uniform(k, (WALK_DIMS[name],), minval=-ranges.bound(name),
                                     maxval=ranges.bound(name))
            for name, k in zip(names, keys, strict=True)}


def move(directions: dict[str, jax.Array], z: jax.Array, steps: dict[str, jax.Array]) -> jax.Array:
    """z + Σ over the walks in `steps` of αᵀw: one latent (z_dim,) moved by each walk."""
    for name, alpha in steps.items():
        z = z + alpha @ directions[name]
    return z


def zeros(z_dim: int, names: tuple[str, ...]) -> dict[str, jax.Array]:
    """No walk at all: where training starts (every step then leaves G(z) unchanged)."""
    return {name: jnp.zeros((WALK_DIMS[name], z_dim)) for name in names}


def random(key: jax.Array, z_dim: int, names: tuple[str, ...]) -> dict[str, jax.Array]:
    """Random unit directions, for smoke runs that have no trained walks."""
    keys = jax.random.split(key, len(names))
    out = {}
    for name, k in zip(names, keys, strict=True):
        w = jax.random.normal(k, (WALK_DIMS[name], z_dim))
        out[name] = w / jnp.linalg.norm(w, axis=-1, keepdims=True)
    return out


@dataclasses.dataclass(frozen=True)
class Walks:
    """Directions of a generator's walks with the ranges of their random steps."""

    directions: dict[str, jax.Array]
    ranges: StepRanges

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.directions)

    def steer(self, key: jax.Array, z: jax.Array) -> jax.Array:
        """z moved by every walk with its own random step (one view's latent)."""
        return move(self.directions, z, sample_steps(key, self.names, self.ranges))


def save(directory: str, walks: Walks, generator: str = "") -> None:
    """Writes `walks` to DIR/walks/ and DIR/walks.json (see the module docstring)."""
    directory = os.path.abspath(directory)
    os.makedirs(directory, exist_ok=True)
    checkpointer = ocp.StandardCheckpointer()
    checkpointer.save(os.path.join(directory, "walks"), jax.device_get(walks.directions), force=True)
    checkpointer.wait_until_finished()
    z_dim = next(iter(walks.directions.values())).shape[-1]
    meta = {"z_dim": int(z_dim), "names": list(walks.names),
            "ranges": dataclasses.asdict(walks.ranges), "generator": generator}
    tmp = os.path.join(directory, "walks.json.tmp")
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(tmp, os.path.join(directory, "walks.json"))


def load(directory: str, names: tuple[str, ...], z_dim: int) -> Walks:
    """Walks `names` stored in DIR, with the step ranges they were trained on, checked
    against the generator's z_dim."""
    directory = os.path.abspath(directory)
    meta_path = os.path.join(directory, "walks.json")
    if not os.path.exists(meta_path):
        raise UserError(f"config key views.walks: no steering walks in {directory}: {meta_path} is "
                        "missing (train them with configs/steering.py, or use views.walks=random)")
    with open(meta_path) as f:
        meta = json.load(f)
    if meta["z_dim"] != z_dim:
        raise UserError(f"config key views.walks: the walks in {directory} are for z_dim="
                        f"{meta['z_dim']}, the generator has z_dim={z_dim}")
    missing = [n for n in names if n not in meta["names"]]
    if missing:
        raise UserError(f"config key steer.walks: {directory} has no walk {missing} "
                        f"(it has {meta['names']})")
    directions = ocp.StandardCheckpointer().restore(os.path.join(directory, "walks"))
    return Walks({n: jax.device_put(jnp.asarray(directions[n])) for n in names},
                 StepRanges(**meta["ranges"]))
