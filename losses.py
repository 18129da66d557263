"""Contrastive and generator losses, and ELR for learning from noisy labels, as pure functions.

All contrastive losses here are one function, `multi_positive`: every row of
the batch is an anchor, every other row a candidate, and the anchor's positives
are a boolean mask. The loss of one anchor is the cross-entropy between the
uniform distribution over its positives and the softmax of its similarities to
all other rows, i.e. −mean_{p ∈ P(i)} log softmax(z_i·z_j/τ)_{j≠i} at p. This is
SupCon's "L_out" (Khosla et al. 2020) and StableRep's multi-positive loss; with
two views per instance and "positive = the other view" it is SimCLR's NT-Xent.

The loss takes the *rows* this device owns against the *columns* of the whole
global batch, so that under data parallelism each device computes its share of
the global loss against globally gathered embeddings (see tasks/contrastive.py);
on one device rows and columns are the same batch.

CLIP's symmetric InfoNCE (`sharded_clip`, for `loss.name=clip_latent`) is the
same function twice: image rows against latent columns and latent rows against
image columns, each row's one positive being its own pair, with τ = 1 / logit scale.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def l2_normalize(x: jax.Array, eps: float = 1e-12) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, -1, keepdims=True), eps))


def multi_positive(rows: jax.Array, columns: jax.Array, positives: jax.Array,
                   self_mask: jax.Array, temperature: float) -> jax.Array:
    """Per-anchor multi-positive contrastive loss (see the module docstring).

    rows: (n, d) L2-normalised embeddings of the anchors; columns: (N, d) of all
    candidates; positives: (n, N) bool, which candidates are positives of each
    anchor; self_mask: (n, N) bool, the anchor itself (never a candidate).
    Returns (n,) losses; an anchor without positives gets 0.
    """
    logits = rows @ columns.T / temperature
    logits = jnp.where(self_mask, -jnp.inf, logits)
    log_prob = jax.nn.log_softmax(logits, axis=-1)
    positives = positives & ~self_mask
    count = positives.sum(-1)
    total = jnp.sum(jnp.where(positives, log_prob, 0.0), -1)
    return jnp.where(count > 0, -total / jnp.maximum(count, 1), 0.0)


# The contrastive losses, by what makes two views positives: the same instance, or the same class.
POSITIVES = {"ntxent": "instance", "supcon": "class", "multipos": "instance"}


def positive_mask(loss_name: str, row_ids: jax.Array, column_ids: jax.Array,
                  row_labels: jax.Array | None = None,
                  column_labels: jax.Array | None = None) -> jax.Array:
    """Which columns are positives of each row (POSITIVES).

    `ntxent` and `multipos`: views of the same instance (equal ids); `supcon`:
    views with the same label.
    """
    if POSITIVES.get(loss_name) == "instance":
        return row_ids[:, None] == column_ids[None, :]
    if POSITIVES.get(loss_name) == "class":
        if row_labels is None or column_labels is None:
            raise ValueError("loss.name='supcon' needs labels "
                             "(a conditional generator or a labelled dataset)")
        return row_labels[:, None] == column_labels[None, :]
    raise ValueError(f"unknown contrastive loss {loss_name!r}")


def contrastive(embeddings: jax.Array, instance_ids: jax.Array, *, loss_name: str,
                temperature: float, base_temperature: float,
                labels: jax.Array | None = None) -> jax.Array:
    """The mean loss of a whole (single-device) batch of views; see `multi_positive`.

    The loss is scaled by temperature / base_temperature, as SupCon and GenRep do.
    """
    z = l2_normalize(embeddings)
    n = z.shape[0]
    pos = positive_mask(loss_name, instance_ids, instance_ids, labels, labels)
    per_anchor = multi_positive(z, z, pos, jnp.eye(n, dtype=bool), temperature)
    return (temperature / base_temperature) * per_anchor.mean()


def sharded_contrastive(z: jax.Array, ids: jax.Array, labels: jax.Array, *, axis_name: str,
                        loss_name: str, temperature: float, base_temperature: float) -> jax.Array:
    """This device's share of the global-batch loss, inside shard_map or pmap over `axis_name`.

    z: (n, d) L2-normalised embeddings of this device's views; ids and labels (n,).
    Each device scores its own anchors against the all-gathered embeddings of the
    whole global batch and divides by the global count, so the sum over devices
    (a psum) is exactly `contrastive` on the gathered batch; all_gather's
    transpose routes every device's gradient back to the views it came from.
    """
    own, total = _own_columns(z.shape[0], axis_name)
    z_all = jax.lax.all_gather(z, axis_name, tiled=True)
    ids_all = jax.lax.all_gather(ids, axis_name, tiled=True)
    labels_all = jax.lax.all_gather(labels, axis_name, tiled=True)
    positives = positive_mask(loss_name, ids, ids_all, labels, labels_all)
    per_anchor = multi_positive(z, z_all, positives, own, temperature)
    return (temperature / base_temperature) * per_anchor.sum() / total


def _own_columns(n: int, axis_name: str) -> tuple[jax.Array, int]:
    """(n, N) bool: which global column is each of this device's n rows; and N."""
    total = n * jax.lax.psum(1, axis_name)
    rows = jax.lax.axis_index(axis_name) * n + jnp.arange(n)
    return rows[:, None] == jnp.arange(total)[None, :], total


def sharded_clip(images: jax.Array, latents: jax.Array, logit_scale: jax.Array, *,
                 axis_name: str) -> jax.Array:
    """This device's share of CLIP's symmetric InfoNCE between paired embeddings.

    images, latents: (n, d) L2-normalised; row i of each is one pair. Logits are
    logit_scale · image·latent over the global batch (all-gathered); the loss is
    the mean of the image→latent and latent→image cross-entropies whose target is
    the row's own pair. Summed over devices it is the loss of the gathered batch.
    """
    own, total = _own_columns(images.shape[0], axis_name)
    never = jnp.zeros_like(own)  # the other tower's rows are all candidates
    temperature = 1.0 / logit_scale
    to_latents = multi_positive(images, jax.lax.all_gather(latents, axis_name, tiled=True),
                                own, never, temperature)
    to_images = multi_positive(latents, jax.lax.all_gather(images, axis_name, tiled=True),
                               own, never, temperature)
    return 0.5 * (to_latents.sum() + to_images.sum()) / total


def hinge_discriminator(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
    """Hinge loss of the discriminator (Lim & Ye 2017; SNGAN, BigGAN)."""
    return jnp.mean(jax.nn.relu(1.0 - real_logits)) + jnp.mean(jax.nn.relu(1.0 + fake_logits))


def hinge_generator(fake_logits: jax.Array) -> jax.Array:
    return -jnp.mean(fake_logits)


def elr_targets(targets: jax.Array, probs: jax.Array, beta: float) -> jax.Array:
    """ELR's targets after one more step of their temporal ensemble (Liu et al., NeurIPS 2020):
    β·t + (1 − β)·p̂, p̂ the model's predictions (clipped to [1e-4, 1 − 1e-4] and renormalised),
    with no gradient."""
    p = jax.lax.stop_gradient(jnp.clip(probs, 1e-4, 1.0 - 1e-4))
    return beta * targets + (1.0 - beta) * p / jnp.sum(p, -1, keepdims=True)


def elr(logits: jax.Array, labels: jax.Array, targets: jax.Array, lam: float) -> jax.Array:
    """Early-learning regularisation (Liu et al., NeurIPS 2020), per example: the cross-entropy
    with the (noisy) labels plus λ·log(1 − ⟨t, p⟩), p the softmax (clipped to [1e-4, 1 − 1e-4])
    and t the example's ELR target (`elr_targets`, no gradient). Minimising log(1 − ⟨t, p⟩)
    pulls p towards the targets, the model's own early predictions, which a noisy label
    later tries to overturn."""
    log_p = jax.nn.log_softmax(logits)
    ce = -jnp.take_along_axis(log_p, labels[:, None], -1)[:, 0]
    p = jnp.clip(jnp.exp(log_p), 1e-4, 1.0 - 1e-4)
    return ce + lam * jnp.log(1.0 - jnp.sum(jax.lax.stop_gradient(targets) * p, -1))
