"""Pixel views: SimCLR's random image transforms in pure JAX, one image at a time.

`augment(key, image, ...)` maps one HWC image in [0, 1] to one view of size
`out_size`: random resized crop, horizontal flip, colour jitter (brightness,
contrast, saturation, hue, in a random order) with probability `jitter_prob`,
grayscale with probability `gray_prob`, optional Gaussian blur. It is vmapped
over per-example keys inside the jitted train step, so views are made on the
accelerator and each example's transform depends only on its own key.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

PIXEL_KINDS = ("simclr", "none")
CROP_FROM = ("loaded", "original")  # views.crop_from: where SimCLR's random resized crop is taken


@dataclasses.dataclass(frozen=True)
class PixelConfig:
    """Parameters of the SimCLR transform (torchvision's names and defaults of GenRep)."""

    crop_scale: tuple[float, float] = (0.2, 1.0)
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    crop: bool = True  # False: the crop was taken on the host from the original (HostCrop)
    flip: bool = True
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.1
    jitter_prob: float = 0.8
    gray_prob: float = 0.2
    blur_prob: float = 0.0
    blur_sigma: tuple[float, float] = (0.1, 2.0)


def _gray(image: jax.Array) -> jax.Array:
    return image @ jnp.array([0.299, 0.587, 0.114], image.dtype)


CROP_ATTEMPTS = 10  # torchvision's number of tries before its centre-crop fallback


def _fallback_size(h: int, w: int, ratio: tuple[float, float]) -> tuple[int, int]:
    """(crop_h, crop_w) of torchvision's centre-crop fallback: the whole image, narrowed to
    the nearest aspect in `ratio`."""
    in_ratio = w / h
    if in_ratio < min(ratio):
        return round(w / min(ratio)), w
    if in_ratio > max(ratio):
        return h, round(h * max(ratio))
    return h, w


def crop_box(key: jax.Array, h: int, w: int, scale: tuple[float, float],
             ratio: tuple[float, float]) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """(top, left, crop_h, crop_w) in whole pixels, drawn as torchvision's
    RandomResizedCrop.get_params draws them.

    torchvision tries up to 10 (area, aspect) draws, keeps the first whose rounded
    box fits in the image, and otherwise falls back to the largest centre crop
    with an aspect inside `ratio`. Here the 10 tries are drawn at once and the first
    fitting one is selected, which keeps shapes static under jit and gives the same
    distribution of boxes.
    """
    k_area, k_ratio, k_y, k_x = jax.random.split(key, 4)
    area = jax.random.uniform(k_area, (CROP_ATTEMPTS,), minval=scale[0], maxval=scale[1]) * h * w
    aspect = jnp.exp(jax.random.uniform(k_ratio, (CROP_ATTEMPTS,), minval=math.log(ratio[0]),
                                        maxval=math.log(ratio[1])))
    crop_w = jnp.round(jnp.sqrt(area * aspect))
    crop_h = jnp.round(jnp.sqrt(area / aspect))
    fits = (crop_w > 0) & (crop_w <= w) & (crop_h > 0) & (crop_h <= h)
    first = jnp.argmax(fits)
    fb_h, fb_w = _fallback_size(h, w, ratio)
    found = fits.any()
    crop_h = jnp.where(found, crop_h[first], fb_h)
    crop_w = jnp.where(found, crop_w[first], fb_w)
    # torchvision: randint(0, h - crop_h + 1), uniform over the whole-pixel offsets.
    top = jnp.floor(jax.random.uniform(k_y, ()) * (h - crop_h + 1))
    left = jnp.floor(jax.random.uniform(k_x, ()) * (w - crop_w + 1))
    top = jnp.where(found, top, (h - fb_h) // 2)
    left = jnp.where(found, left, (w - fb_w) // 2)
    return top, left, crop_h, crop_w


def random_resized_crop(key: jax.Array, image: jax.Array, out_size: int,
                        scale: tuple[float, float], ratio: tuple[float, float]) -> jax.Array:
    """A random box of area fraction in `scale` and aspect in `ratio` (drawn as
    torchvision draws it, see `crop_box`), resized to out_size × out_size."""
    top, left, crop_h, crop_w = crop_box(key, image.shape[0], image.shape[1], scale, ratio)
    return crop_and_resize(image, top, left, crop_h, crop_w, out_size)


def crop_and_resize(image: jax.Array, top, left, crop_h, crop_w, out_size: int) -> jax.Array:
    """Bilinear resampling of the box (top, left, crop_h, crop_w) to out_size × out_size."""
    scale = jnp.stack([out_size / crop_h, out_size / crop_w])
    translation = -jnp.stack([top, left]) * scale
    return jax.image.scale_and_translate(
        image, (out_size, out_size, image.shape[2]), (0, 1), scale, translation,
        method="linear", antialias=True)


def centre_crop(image: jax.Array, out_size: int) -> jax.Array:
    """The deterministic view: the whole image resized to out_size (identity if equal)."""
    h, w = image.shape[:2]
    if h == out_size and w == out_size:
        return image
    side = min(h, w)
    return crop_and_resize(image, (h - side) / 2, (w - side) / 2, side, side, out_size)


def eval_view(image: jax.Array, image_size: int, load_size: int) -> jax.Array:
    """The evaluation view, Resize + CenterCrop as torchvision evaluates: the shorter side resized to
    `load_size`, then the central image_size square. Real images arrive already at
    load_size (datasets.load), so only images of another size (a generator's, say) are
    resized: every image reaches the encoder through this one preprocessing."""
    if min(image.shape[:2]) != load_size:
        image = centre_crop(image, load_size)
    h, w = image.shape[:2]
    top, left = (h - image_size) // 2, (w - image_size) // 2
    return image[top:top + image_size, left:left + image_size]


def _rgb_to_hsv(rgb):
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    v = jnp.max(rgb, -1)
    c = v - jnp.min(rgb, -1)
    s = jnp.where(v > 0, c / jnp.maximum(v, 1e-8), 0.0)
    safe_c = jnp.maximum(c, 1e-8)
    h = jnp.where(v == r, (g - b) / safe_c, jnp.where(v == g, 2.0 + (b - r) / safe_c, 4.0 + (r - g) / safe_c))
    h = jnp.where(c > 0, jnp.mod(h / 6.0, 1.0), 0.0)
    return jnp.stack([h, s, v], -1)


def _hsv_to_rgb(hsv):
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    k = jnp.mod(jnp.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0, 6.0)
    return v[..., None] - v[..., None] * s[..., None] * jnp.clip(jnp.minimum(k, 4.0 - k), 0.0, 1.0)


def color_jitter(key: jax.Array, image: jax.Array, cfg: PixelConfig) -> jax.Array:
    """torchvision's ColorJitter: the four adjustments with random strengths, random order."""
    k_order, k_b, k_c, k_s, k_h = jax.random.split(key, 5)
    b = jax.random.uniform(k_b, (), minval=1 - cfg.brightness, maxval=1 + cfg.brightness)
    c = jax.random.uniform(k_c, (), minval=1 - cfg.contrast, maxval=1 + cfg.contrast)
    s = jax.random.uniform(k_s, (), minval=1 - cfg.saturation, maxval=1 + cfg.saturation)
    hue = jax.random.uniform(k_h, (), minval=-cfg.hue, maxval=cfg.hue)

    def brightness(x):
        return jnp.clip(x * b, 0, 1)

    def contrast(x):
        return jnp.clip(c * x + (1 - c) * _gray(x).mean(), 0, 1)

    def saturation(x):
        return jnp.clip(s * x + (1 - s) * _gray(x)[..., None], 0, 1)

    def hue_shift(x):
        hsv = _rgb_to_hsv(x)
        hsv = hsv.at[..., 0].set(jnp.mod(hsv[..., 0] + hue, 1.0))
        return jnp.clip(_hsv_to_rgb(hsv), 0, 1)

    ops = (brightness, contrast, saturation, hue_shift)
    order = jax.random.permutation(k_order, len(ops))
    for i in range(len(ops)):
        image = jax.lax.switch(order[i], ops, image)
    return image


def gaussian_blur(key: jax.Array, image: jax.Array, sigma_range: tuple[float, float]) -> jax.Array:
    """Separable Gaussian blur with σ uniform in sigma_range (pixels), kernel ≈ 10% of the side."""
    size = max(3, int(0.1 * image.shape[0]) // 2 * 2 + 1)
    sigma = jax.random.uniform(key, (), minval=sigma_range[0], maxval=sigma_range[1])
    x = jnp.arange(size) - size // 2
    kernel = jnp.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    pad = size // 2
    padded = jnp.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="reflect")
    h, w = image.shape[:2]
    rows = sum(kernel[i] * padded[i:i + h, :, :] for i in range(size))
    return sum(kernel[i] * rows[:, i:i + w, :] for i in range(size))


def augment(key: jax.Array, image: jax.Array, out_size: int, cfg: PixelConfig) -> jax.Array:
    """One SimCLR view of one HWC image in [0, 1]; the result is in [0, 1]."""
    k_crop, k_flip, k_jit, k_jit_p, k_gray, k_blur, k_blur_p = jax.random.split(key, 7)
    if cfg.crop:
        x = random_resized_crop(k_crop, image, out_size, cfg.crop_scale, cfg.crop_ratio)
    else:
        x = centre_crop(image, out_size)
    x = jnp.clip(x, 0, 1)
    if cfg.flip:
        x = jnp.where(jax.random.bernoulli(k_flip), x[:, ::-1], x)
    if cfg.jitter_prob > 0:
        x = jnp.where(jax.random.bernoulli(k_jit_p, cfg.jitter_prob), color_jitter(k_jit, x, cfg), x)
    if cfg.gray_prob > 0:
        gray = jnp.repeat(_gray(x)[..., None], 3, -1)
        x = jnp.where(jax.random.bernoulli(k_gray, cfg.gray_prob), gray, x)
    if cfg.blur_prob > 0:
        x = jnp.where(jax.random.bernoulli(k_blur_p, cfg.blur_prob),
                      gaussian_blur(k_blur, x, cfg.blur_sigma), x)
    return jnp.clip(x, 0, 1)


def view(key: jax.Array, image: jax.Array, kind: str, out_size: int, cfg: PixelConfig) -> jax.Array:
    """The pixel view of `kind` ("simclr" or "none": centre crop only) of one image in [0, 1]."""
    if kind == "simclr":
        return augment(key, image, out_size, cfg)
    if kind == "none":
        return centre_crop(image, out_size)
    raise ValueError(f"unknown views.pixel={kind!r}; choose from {PIXEL_KINDS}")


def host_crop_box(rng, h: int, w: int, scale: tuple[float, float],
                  ratio: tuple[float, float]) -> tuple[int, int, int, int]:
    """(top, left, crop_h, crop_w) drawn as `crop_box` draws it (torchvision's get_params),
    with a NumPy generator: for crops taken on the host."""
    area = rng.uniform(scale[0], scale[1], CROP_ATTEMPTS) * h * w
    aspect = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), CROP_ATTEMPTS))
    crop_w, crop_h = np.round(np.sqrt(area * aspect)), np.round(np.sqrt(area / aspect))
    fits = (crop_w > 0) & (crop_w <= w) & (crop_h > 0) & (crop_h <= h)
    u_y, u_x = rng.uniform(size=2)
    if fits.any():
        first = int(np.argmax(fits))
        ch, cw = int(crop_h[first]), int(crop_w[first])
        return int(u_y * (h - ch + 1)), int(u_x * (w - cw + 1)), ch, cw
    ch, cw = _fallback_size(h, w, ratio)
    return (h - ch) // 2, (w - cw) // 2, ch, cw


class HostCrop:
    """views.crop_from=original: SimCLR's random resized crop of each decoded image at its own
    size, on the host (a Grain worker), as SimCLR's and GenRep's ImageNet input pipelines
    take it; each of the `num_views` boxes is resized to `out_size` (bilinear, antialiased).
    The boxes are keyed by (seed, the example's global position, view): the same for any
    number of devices or processes. The device then applies the rest of the transform."""

    def __init__(self, num_views: int, out_size: int, scale: tuple[float, float],
                 ratio: tuple[float, float], seed: int):
        self.num_views, self.out_size = num_views, out_size
        self.scale, self.ratio, self.seed = tuple(scale), tuple(ratio), seed

    def views(self, image: np.ndarray, position: int) -> np.ndarray:
        """(num_views, out_size, out_size, 3) uint8 crops of one HWC uint8 image."""
        from PIL import Image

        h, w = image.shape[:2]
        out = []
        for v in range(self.num_views):
            rng = np.random.default_rng([self.seed, int(position), v])
            top, left, ch, cw = host_crop_box(rng, h, w, self.scale, self.ratio)
            box = np.ascontiguousarray(image[top:top + ch, left:left + cw])  # crop, then resize:
            out.append(np.asarray(Image.fromarray(box).resize(  # torchvision's resized_crop
                (self.out_size, self.out_size), Image.BILINEAR)))
        return np.stack(out)

    def __call__(self, batch: dict, positions: np.ndarray) -> dict:
        batch["image"] = np.stack([self.views(im, p) for im, p in zip(batch["image"], positions,
                                                                       strict=True)])
        return batch
