"""Pixel-space edits that steering walks learn to imitate (Jahanian et al., ICLR 2020).

A steering walk moves a latent along a direction w so that G(z + α·w) looks like
`edit(G(z), α)`, an edit made in pixel space. Each edit here takes one HWC image
in [-1, 1] (the generator's range) and its step α, and returns the edited image
with a mask of the pixels it can vouch for: a zoom out, a shift or a rotation
brings in pixels from outside the image, which the walk's loss must not count.

The step α of each walk, in these units:
- `color`  (3,): added to the R, G, B channels, the result clipped to [-1, 1];
- `zoom`   (1,): log of the scale factor (α > 0 enlarges the content);
- `shift_x`(1,): fraction of the width the content moves right;
- `shift_y`(1,): fraction of the height the content moves down;
- `rotate` (1,): radians the content turns counter-clockwise as displayed.

Zoom, shift and rotation are one affine map about the image centre, sampled
bilinearly (edge pixels repeat outside; the mask marks them).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

WALK_DIMS = {"color": 3, "zoom": 1, "shift_x": 1, "shift_y": 1, "rotate": 1}


def affine(image: jax.Array, *, scale=1.0, shift_x=0.0, shift_y=0.0, angle=0.0
           ) -> tuple[jax.Array, jax.Array]:
    """(edited image, mask (H, W, 1)): the content scaled by `scale`, turned by `angle`
    (radians, counter-clockwise as displayed), then moved by (shift_x·W, shift_y·H) pixels.

    Each output pixel samples the input at the inverse map of its position; the mask is
    1 where that position lies inside the input and 0 where it comes from outside.
    """
    h, w = image.shape[:2]
    rows, cols = jnp.meshgrid(jnp.arange(h, dtype=jnp.float32), jnp.arange(w, dtype=jnp.float32),
                              indexing="ij")
    # Offsets from the centre, x right and v down, with the shift undone.
    du = cols - (w - 1) / 2 - shift_x * w
    dv = rows - (h - 1) / 2 - shift_y * h
    cos, sin = jnp.cos(angle), jnp.sin(angle)
    # A counter-clockwise turn on screen is clockwise in (x right, v down) coordinates;
    # this is its inverse, then the inverse scale.
    src_u = (cos * du - sin * dv) / scale
    src_v = (sin * du + cos * dv) / scale
    src_row, src_col = src_v + (h - 1) / 2, src_u + (w - 1) / 2
    sample = jax.vmap(lambda ch: jax.scipy.ndimage.map_coordinates(
        ch, [src_row, src_col], order=1, mode="nearest"), in_axes=-1, out_axes=-1)
    inside = ((src_row >= -1e-4) & (src_row <= h - 1 + 1e-4)
              & (src_col >= -1e-4) & (src_col <= w - 1 + 1e-4))
    return sample(image), inside[..., None].astype(image.dtype)


def edit(name: str, image: jax.Array, alpha: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(edited image, mask (H, W, 1)) of walk `name` with step `alpha` (WALK_DIMS[name],)."""
    if name == "color":
        return jnp.clip(image + alpha, -1.0, 1.0), jnp.ones(image.shape[:2] + (1,), image.dtype)
    a = alpha[0]
    if name == "zoom":
        return affine(image, scale=jnp.exp(a))
    if name == "shift_x":
        return affine(image, shift_x=a)
    if name == "shift_y":
        return affine(image, shift_y=a)
    if name == "rotate":
        return affine(image, angle=a)
    raise ValueError(f"unknown steering walk {name!r}; choose from {tuple(WALK_DIMS)}")


def masked_mse(image: jax.Array, target: jax.Array, mask: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(Σ mask·(image − target)², Σ mask over pixels and channels): the parts of a masked mean,
    kept apart so that a batch split over devices sums them before dividing."""
    mask = jnp.broadcast_to(mask, image.shape)
    return jnp.sum(mask * (image - target) ** 2), jnp.sum(mask)
