"""Fidelity and diversity of a generator's samples and views, in an encoder's feature space.

A generator is only as good a data source as its samples are faithful (precision)
and diverse (recall), and the Gaussian neighbourhood's σ trades one for the other.
This module draws anchors z (and, for conditional generators, uniformly drawn
classes) exactly as training does (`data.views.sample`), renders them, and
compares features (`evaluators.features.extract`) with `fidelity_metrics`:

- `samples_vs_real`: the anchors G(z) against real images;
- for each σ, `views[σ].vs_anchors`: the views G(z + σ·ε) against their own anchors
  (σ = 0 gives 1 for every metric), and `views[σ].vs_real`: the views against real images.

Only latent views are compared: pixel transforms (crops, colour jitter) would
mix a second, σ-independent source of change into the numbers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from data import rundir, views
from errors import UserError
from evaluators.fidelity import fidelity_metrics
from models import generators

Featurize = Callable[[np.ndarray], np.ndarray]  # uint8 images (N, H, W, 3) -> features (N, d)


def sample_latents(z_dim: int, num_classes: int, n: int, *, sigma: float, seed: int,
                   truncation: float = 1.0) -> dict[str, np.ndarray]:
    """`n` anchors (n, z_dim), one Gaussian-neighbour view of each (n, z_dim) and classes (n,).

    The anchors and classes do not depend on σ (views.sample draws them from their
    own keys), so every σ perturbs the same anchors.
    """
    keys = jax.vmap(lambda i: jax.random.fold_in(jax.random.key(seed), i))(jnp.arange(n))
    spec = views.ViewSpec(kind="gaussian", sigma=sigma, num_views=1, truncation=truncation)
    inst = jax.jit(jax.vmap(lambda k: views.sample(k, spec, z_dim=z_dim, num_classes=num_classes)))(keys)
    return {"anchor": np.asarray(inst["anchor"]), "view": np.asarray(inst["views"][:, 0]),
            "label": np.asarray(inst["label"])}


def render(generator, latents: np.ndarray, labels: np.ndarray, *, truncation: float = 1.0,
           batch_size: int = 500) -> np.ndarray:
    """uint8 images (n, R, R, 3) of the generator at `latents` and `labels`, in fixed-size batches.

    uint8, like real images: both then go through the same feature extraction.
    """

    @jax.jit  # the parameters are an argument, not constants folded into the program
    def apply(params, z, y):
        return views.to_uint8(generator.apply(params, z, y, truncation))

    out = []
    n = len(latents)
    for start in range(0, n, batch_size):
        z, y = latents[start:start + batch_size], labels[start:start + batch_size]
        pad = batch_size - len(z)
        if pad:  # one compiled shape for every batch
            z = np.concatenate([z, np.zeros((pad, z.shape[1]), z.dtype)])
            y = np.concatenate([y, np.zeros((pad,), y.dtype)])
        out.append(np.asarray(apply(generator.params, z, y))[:batch_size - pad])
    return np.concatenate(out)


def evaluate(featurize: Featurize, generator, real_images, *, num_samples: int,
             sigmas: Sequence[float] = (), k: int = 5, seed: int = 0,
             truncation: float = 1.0) -> dict:
    """Fidelity metrics of `num_samples` anchors (and their views at each σ) against real images.

    `real_images`: uint8 images, an array or a source of data.datasets (what `featurize` takes).
    Returns `samples_vs_real` and `views` (σ as a string → `vs_anchors`, `vs_real`),
    each a dict of `fidelity_metrics`, with the sample counts and k.
    """
    real = featurize(real_images)
    base = sample_latents(generator.z_dim, generator.num_classes, num_samples, sigma=0.0, seed=seed,
                          truncation=truncation)
    anchors = featurize(render(generator, base["anchor"], base["label"], truncation=truncation))
    result = {"num_real": len(real), "num_generated": num_samples, "k": k,
              "samples_vs_real": fidelity_metrics(real, anchors, k=k), "views": {}}
    for sigma in sigmas:
        lat = sample_latents(generator.z_dim, generator.num_classes, num_samples, sigma=float(sigma),
                             seed=seed, truncation=truncation)
        v = featurize(render(generator, lat["view"], lat["label"], truncation=truncation))
        result["views"][f"{float(sigma):g}"] = {"vs_anchors": fidelity_metrics(anchors, v, k=k),
                                                "vs_real": fidelity_metrics(real, v, k=k)}
    return result


def load_generator(directory: str | None, samples: int, k: int):
    """(the generator in `directory`, the dataset it was trained on or "") or None when no
    directory is given (eval.py's --fidelity_generator); fails early, in one line."""
    if directory is None:
        return None
    if not os.path.isdir(directory):
        raise UserError(f"--fidelity_generator {directory}: no such directory")
    if not 0 < k < samples:
        raise UserError(f"--fidelity_k={k} must be in [1, --fidelity_samples={samples})")
    generator = generators.load(directory)
    # A generator genviews trained records its dataset; a converted one does not.
    trained_on = ""
    if os.path.exists(os.path.join(directory, rundir.CONFIG)):
        trained_on = rundir.read_config(directory).data.name
    return generator, trained_on
