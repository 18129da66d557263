"""Latent views: the latents whose images are the views of one instance.

GenRep's Gaussian neighbourhood: an anchor z is drawn from a normal truncated at
±2 (times the truncation), and each view is z + σ·ε with ε another normal
truncated at ±2. With `kind="none"` every view is the anchor itself, so views
differ only by their pixel transforms (GenRep's "pixel only" ablation). With
`kind="steer"` each view is the anchor moved by every learned steering walk
(colour, zoom, shift, rotation; models/walks.py) with its own random steps.

Everything here draws from one key per *example*, so that an example's views do
not depend on which device generates them (see tasks/contrastive.py).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LATENT_KINDS = ("gaussian", "none", "steer")
TRUNCATION_BOUND = 2.0


def truncated_normal(key: jax.Array, shape: tuple[int, ...]) -> jax.Array:
    """A standard normal truncated to ±2 (std ≈ 0.8796)."""
    return jax.random.truncated_normal(key, -TRUNCATION_BOUND, TRUNCATION_BOUND, shape)


def sample(key: jax.Array, *, z_dim: int, num_classes: int, kind: str, sigma: float,
           num_views: int, truncation: float = 1.0, walks=None) -> dict[str, jax.Array]:
    """One instance: `anchor` (z_dim,), `views` (num_views, z_dim) and its class `label`.

    An unconditional generator (num_classes == 0) gets label 0. `walks` (a
    models.walks.Walks) is what `kind="steer"` moves the anchor with.
    """
    if kind not in LATENT_KINDS:
        raise ValueError(f"unknown views.latent={kind!r}; choose from {LATENT_KINDS}")
    k_anchor, k_label, k_noise = jax.random.split(key, 3)
    anchor = truncation * truncated_normal(k_anchor, (z_dim,))
    label = (jax.random.randint(k_label, (), 0, num_classes) if num_classes
             else jnp.zeros((), jnp.int32))
    if kind == "gaussian":
        views = anchor + sigma * truncated_normal(k_noise, (num_views, z_dim))
    elif kind == "steer":
        if walks is None:
            raise ValueError("views.latent=steer needs steering walks (config key views.walks)")
        views = jax.vmap(lambda k: walks.steer(k, anchor))(jax.random.split(k_noise, num_views))
    else:
        views = jnp.broadcast_to(anchor, (num_views, z_dim))
    return {"anchor": anchor, "views": views, "label": label}
