"""Latent views: the latents whose images are the views of one instance.

An anchor z is drawn from a normal truncated at ±2 (times the truncation), with a
class y for a conditional generator. Its `num_views` view latents come from the
sampler named by `views.latent` (GenRep's view types):

- `gaussian`: z + σ·ε, ε another normal truncated at ±2 (GenRep's neighbourhood);
- `none`: z itself, so views differ only by their pixel transforms (GenRep's
  "pixel only" ablation);
- `angular`: the Gaussian neighbour rescaled to ‖z‖, a move on the sphere of the
  anchor's norm;
- `independent`: a fresh latent with the anchor's class (conditional generators:
  the views share only the class);
- `multi_sigma`: a Gaussian neighbour whose σ is drawn, per view, uniformly from
  the list `views.sigmas`;
- `steer`: the anchor moved by every learned steering walk (colour, zoom, shift,
  rotation; models/walks.py), each view with its own random steps.

A sampler is `fn(key, anchor, spec) -> (num_views, z_dim)`, registered in
`SAMPLERS`; a new view type is one more entry there (and a field of `ViewSpec`
for its parameters). Everything here draws from one key per *example*, so that
an example's views do not depend on which device generates them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

TRUNCATION_BOUND = 2.0


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """The latent part of config group `views`: which sampler, and its parameters."""

    kind: str = "gaussian"
    num_views: int = 2
    sigma: float = 0.2
    sigmas: tuple[float, ...] = ()
    truncation: float = 1.0
    walks: Any = dataclasses.field(default=None, compare=False)  # models.walks.Walks, for `steer`

    @classmethod
    def from_config(cls, c, walks=None) -> ViewSpec:
        return cls(kind=c.views.latent, num_views=c.views.num_views, sigma=c.views.sigma,
                   sigmas=tuple(c.views.sigmas), truncation=c.generator.truncation, walks=walks)


def truncated_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A standard normal truncated to ±2 (std ≈ 0.8796)."""
    return jax.random.truncated_normal(key, -TRUNCATION_BOUND, TRUNCATION_BOUND, shape)


def _gaussian(key, anchor, spec: ViewSpec):
    return anchor + spec.sigma * truncated_normal(key, (spec.num_views,) + anchor.shape)


def _none(key, anchor, spec: ViewSpec):
    del key
    return jnp.broadcast_to(anchor, (spec.num_views,) + anchor.shape)


def _angular(key, anchor, spec: ViewSpec):
    views = _gaussian(key, anchor, spec)
    norm = lambda x: jnp.linalg.norm(x, axis=-1, keepdims=True)  # noqa: E731
    return views * (norm(anchor) / jnp.maximum(norm(views), 1e-12))


def _independent(key, anchor, spec: ViewSpec):
    return spec.truncation * truncated_normal(key, (spec.num_views,) + anchor.shape)


def _multi_sigma(key, anchor, spec: ViewSpec):
    k_sigma, k_noise = jax.random.split(key)
    choice = jax.random.randint(k_sigma, (spec.num_views,), 0, len(spec.sigmas))
    sigma = jnp.asarray(spec.sigmas, jnp.float32)[choice]
    return anchor + sigma[:, None] * truncated_normal(k_noise, (spec.num_views,) + anchor.shape)


def _steer(key, anchor, spec: ViewSpec):
    return jax.vmap(lambda k: spec.walks.steer(k, anchor))(jax.random.split(key, spec.num_views))


SAMPLERS: dict[str, Callable[[jax.Array, jax.Array, ViewSpec], jax.Array]] = {
    "gaussian": _gaussian,
    "none": _none,
    "angular": _angular,
    "independent": _independent,
    "multi_sigma": _multi_sigma,
    "steer": _steer,
}
LATENT_KINDS = tuple(SAMPLERS)
CONDITIONAL_KINDS = ("independent",)  # view types that need a class-conditional generator


def check(spec: ViewSpec, num_classes: int) -> None:
    """Raises ValueError naming the config key when `spec` cannot be sampled."""
    if spec.kind not in SAMPLERS:
        raise ValueError(f"unknown views.latent={spec.kind!r}; choose from {LATENT_KINDS}")
    if spec.kind in CONDITIONAL_KINDS and not num_classes:
        raise ValueError(f"views.latent={spec.kind!r} keeps the anchor's class and needs a "
                         "class-conditional generator; this one is unconditional")
    if spec.kind == "multi_sigma" and not spec.sigmas:
        raise ValueError("views.latent='multi_sigma' draws σ from views.sigmas, which is empty")
    if spec.kind == "steer" and spec.walks is None:
        raise ValueError("views.latent=steer needs steering walks (config key views.walks)")


def sample(key: jax.Array, spec: ViewSpec, *, z_dim: int, num_classes: int) -> dict[str, jax.Array]:
    """One instance: `anchor` (z_dim,), `views` (num_views, z_dim) and its class `label`.

    The anchor and label are drawn the same way for every view type, so one key
    gives the same anchor whatever `spec.kind` is (comparable view grids). An
    unconditional generator (num_classes == 0) gets label 0.
    """
    check(spec, num_classes)
    k_anchor, k_label, k_views = jax.random.split(key, 3)
    anchor = spec.truncation * truncated_normal(k_anchor, (z_dim,))
    label = (jax.random.randint(k_label, (), 0, num_classes) if num_classes
             else jnp.zeros((), jnp.int32))
    return {"anchor": anchor, "views": SAMPLERS[spec.kind](k_views, anchor, spec), "label": label}


def example_keys(seed: int, step: jax.Array | int, index: jax.Array) -> jax.Array:
    """One key per example, from (seed, step, global example index): the same on any device."""
    step_key = jax.random.fold_in(jax.random.key(seed), step)
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(index)


def instances(keys: jax.Array, spec: ViewSpec, *, z_dim: int, num_classes: int) -> dict[str, jax.Array]:
    """`sample` for each example key (its latent stream: fold_in(key, 0)); leading axis = examples."""
    return jax.vmap(lambda k: sample(jax.random.fold_in(k, 0), spec, z_dim=z_dim,
                                     num_classes=num_classes))(keys)
