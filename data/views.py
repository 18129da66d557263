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
  rotation; data/walks.py), each view with its own random steps.

With `views.anchor_view` the first view is the anchor itself and only the others
come from the sampler: GenRep's pairs (its `GansetDataset` pairs the anchor image
G(z) with one neighbour G(z + σε)). Without it every view is drawn, so two
Gaussian views sit √2·σ apart in expectation, not σ: at equal σ the two forms are
different points of GenRep's σ axis.

A sampler is `fn(key, anchor, spec) -> (num_views, z_dim)`, registered in
`SAMPLERS`; a new view type is one more entry there (and a field of `ViewSpec`
for its parameters). Everything here draws from one key per *example*, so that
an example's views do not depend on which device generates them: `example_keys`
makes them from (seed, step, global example index), and `index_batches` feeds
those indices to a step that generates its own data. With `views.num_anchors = N`
an example draws one of N fixed pool instances instead (`pool_keys`).

A generator's images are in [-1, 1]; `to_unit` and `to_uint8` are the one place
they are brought to [0, 1] (what pixel views and encoders take) or to uint8.
"""

from __future__ import annotations

import dataclasses
import fractions
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

TRUNCATION_BOUND = 2.0
POOL_STREAM = 2**31 - 1  # the "step" whose keys are the pool instances' (training never reaches it)


@dataclasses.dataclass(frozen=True)
class ViewSpec:
    """The latent part of config group `views`: which sampler, and its parameters."""

    kind: str = "gaussian"
    num_views: int = 2
    sigma: float = 0.2
    sigmas: tuple[float, ...] = ()
    truncation: float = 1.0
    anchor_view: bool = False  # the first view is the anchor itself (GenRep's form)
    walks: Any = dataclasses.field(default=None, compare=False)  # data.walks.Walks, for `steer`

    @classmethod
    def from_config(cls, c, walks=None) -> ViewSpec:
        return cls(kind=c.views.latent, num_views=c.views.num_views, sigma=c.views.sigma,
                   sigmas=tuple(c.views.sigmas), truncation=c.generator.truncation,
                   anchor_view=bool(c.views.anchor_view), walks=walks)


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
    if spec.anchor_view and spec.num_views < 2:
        raise ValueError("views.anchor_view=True keeps the anchor as the first view and needs "
                         f"views.num_views ≥ 2, got {spec.num_views}")
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
    if spec.anchor_view:
        drawn = SAMPLERS[spec.kind](k_views, anchor,
                                    dataclasses.replace(spec, num_views=spec.num_views - 1))
        views = jnp.concatenate([anchor[None], drawn])
    else:
        views = SAMPLERS[spec.kind](k_views, anchor, spec)
    return {"anchor": anchor, "views": views, "label": label}


def example_keys(seed: int, step: jax.Array | int, index: jax.Array) -> jax.Array:
    """One key per example, from (seed, step, global example index): the same on any device."""
    step_key = jax.random.fold_in(jax.random.key(seed), step)
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(index)


def instances(keys: jax.Array, spec: ViewSpec, *, z_dim: int, num_classes: int) -> dict[str, jax.Array]:
    """`sample` for each example key (its latent stream: fold_in(key, 0)); leading axis = examples."""
    return jax.vmap(lambda k: sample(jax.random.fold_in(k, 0), spec, z_dim=z_dim,
                                     num_classes=num_classes))(keys)


def anchors(keys: jax.Array, *, z_dim: int, num_classes: int,
            truncation: float) -> tuple[jax.Array, jax.Array]:
    """One anchor per example key, with no views: its latent and class, as `instances`
    draws them (the generator's own samples, for tasks that need no views of them)."""
    spec = ViewSpec(kind="none", num_views=1, truncation=truncation)
    inst = instances(keys, spec, z_dim=z_dim, num_classes=num_classes)
    return inst["anchor"], inst["label"]


def pool_index(keys: jax.Array, num_anchors: int) -> jax.Array:
    """Which of `num_anchors` pool instances (0 … N-1) each example key draws."""
    return jax.vmap(lambda k: jax.random.randint(jax.random.fold_in(k, 2), (), 0, num_anchors))(keys)


def pool_keys(seed: int, keys: jax.Array, num_anchors: int) -> jax.Array:
    """The keys of the pool instances the examples draw: a pool instance always has the
    same key, hence the same latents and class (a finite generated dataset)."""
    pool = jax.random.fold_in(jax.random.key(seed), POOL_STREAM)
    return jax.vmap(lambda i: jax.random.fold_in(pool, i))(pool_index(keys, num_anchors))


def mix_period(ratio: float) -> tuple[int, int]:
    """data.mix_ratio as k / m in lowest terms (m ≤ 1000): in every m consecutive positions of
    a batch, the first k are generated instances. ValueError if no such fraction equals it."""
    if not 0 <= ratio <= 1:  # NaN and ±inf too
        raise ValueError(f"{ratio} is not a fraction k/m in [0, 1] with m ≤ 1000")
    fraction = fractions.Fraction(ratio).limit_denominator(1000)
    if abs(float(fraction) - ratio) > 1e-9:
        raise ValueError(f"{ratio} is not a fraction k/m in [0, 1] with m ≤ 1000")
    return fraction.numerator, fraction.denominator


def mix_rows(batch: int, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """(generated rows, real rows) of a batch of `batch` consecutive positions that starts at
    a multiple of the period m of `ratio` (mix_period): row j is generated iff j mod m < k.
    As every device's share of a global batch starts at such a multiple (the per-device
    batch is a multiple of m), a position's source depends only on the position, not on the
    device count; and the rows are static, so each device renders only its generated ones."""
    k, m = mix_period(ratio)
    if batch % m:
        raise ValueError(f"a batch of {batch} is not a multiple of {m}")
    generated = np.arange(batch) % m < k
    return np.nonzero(generated)[0], np.nonzero(~generated)[0]


def index_batches(batch_size: int, process_index: int, process_count: int):
    """Batches of generated instances: this process's global example indices, every step
    the same, since (seed, step, index) keys all their randomness."""
    local = batch_size // process_count
    index = (process_index * local + np.arange(local)).astype(np.int32)
    while True:
        yield {"index": index}


def to_unit(images: jax.Array) -> jax.Array:
    """A generator's images in [-1, 1] → [0, 1]."""
    return (images + 1.0) / 2.0


def to_uint8(images: jax.Array) -> jax.Array:
    """A generator's images in [-1, 1] → uint8, rounded, as real images are stored."""
    return jnp.round(jnp.clip((images + 1.0) * 127.5, 0, 255)).astype(jnp.uint8)
