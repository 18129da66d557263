"""The encoders' convolution: `jax.lax.conv_general_dilated`, with the weight gradient of a
strided convolution computed as one matrix product per kernel tap.

Why: XLA:CPU computes a strided convolution's weight gradient as a convolution over its
input transposed to batch-innermost layout, and it fuses that transpose with the
elementwise ops that made the input (BatchNorm and ReLU, recomputed in transposed order).
Such a fused transpose runs ~8× slower than a plain one (JAX 0.10.2, one core: 160–180 ms
against 19 ms for a 256×32×32×32 array). In the quickstart ConvNet's forward and backward
pass the transposes took 228 of 703 ms (one core, profiled). Per tap, the product here
reads the input's strided slice as it lies (channels innermost); XLA transposes only the
output's cotangent, once per convolution (half the input's size where a stride-2 layer
doubles the channels). The forward pass and the input gradient are XLA's own, unchanged;
the weight gradient is the same sum in another order (equal to float32 rounding:
tests/test_conv.py). It pays on one core (README: Speed on CPU); on two, XLA's
transposes used the second thread better, and the quickstart's step measured the same.

Only on CPU (`jax.lax.platform_dependent`: GPU and TPU compile autodiff's weight gradient,
as without this module), and only for 4-D NHWC/HWIO convolutions with a stride > 1, a
kernel of at most MAX_TAPS taps, no dilation and no feature groups; every other call is
`jax.lax.conv_general_dilated` itself.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")
MAX_TAPS = 9  # kernels up to 3×3 (a 7×7 stem would be 49 thin products)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count=1, precision=None):
    """`jax.lax.conv_general_dilated`'s signature and values (Flax's `nn.Conv` calls it)."""
    strides = tuple(window_strides)
    plain = (lhs.ndim != 4 or all(s == 1 for s in strides) or feature_group_count != 1
             or rhs.shape[0] * rhs.shape[1] > MAX_TAPS
             or any(d != 1 for d in (lhs_dilation or ()) + (rhs_dilation or ()))
             or lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
             != lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC))
    if not plain:
        pads = (lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], strides, padding)
                if isinstance(padding, str) else padding)
        pads = tuple((int(lo), int(hi)) for lo, hi in pads)
        if min(min(p) for p in pads) >= 0:
            return _strided(lhs, rhs, strides, pads, precision)
    return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                    dimension_numbers, feature_group_count, precision=precision)


def _conv(lhs, rhs, strides, pads, precision):
    return lax.conv_general_dilated(lhs, rhs, strides, pads, dimension_numbers=NHWC,
                                    precision=precision)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _strided(lhs, rhs, strides, pads, precision):
    return _conv(lhs, rhs, strides, pads, precision)


def _strided_fwd(lhs, rhs, strides, pads, precision):
    return _conv(lhs, rhs, strides, pads, precision), (lhs, rhs)


def _strided_bwd(strides, pads, precision, residuals, g):
    lhs, rhs = residuals
    _, lhs_vjp = jax.vjp(lambda x: _conv(x, rhs, strides, pads, precision), lhs)
    (d_lhs,) = lhs_vjp(g)

    def xlas_own(lhs, g):  # GPU and TPU: their compilers' weight gradient, as autodiff gives
        _, rhs_vjp = jax.vjp(lambda w: _conv(lhs, w, strides, pads, precision), rhs)
        return rhs_vjp(g)[0]

    d_rhs = lax.platform_dependent(
        lhs, g, default=xlas_own,
        cpu=lambda lhs, g: weight_gradient(lhs, g, rhs.shape[:2], strides, pads, precision))
    return d_lhs, d_rhs


def weight_gradient(lhs, g, kernel_size, strides, pads, precision=None):
    """d(loss)/d(kernel) of an NHWC/HWIO convolution, given the output's cotangent `g`:
    for each tap (i, j), `g` contracted over batch and output positions with the input
    pixels that tap saw (a strided slice of the input, channels innermost, read as it
    lies; XLA transposes only `g`, once, to put the contraction innermost)."""
    (kh, kw), (sh, sw) = kernel_size, strides
    n, ho, wo, _ = g.shape
    padded = jnp.pad(lhs, ((0, 0), *pads, (0, 0)))
    taps = []
    for i in range(kh):
        for j in range(kw):
            seen = lax.slice(padded, (0, i, j, 0),
                             (n, i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1, lhs.shape[3]),
                             (1, sh, sw, 1))
            taps.append(lax.dot_general(g, seen, (((0, 1, 2), (0, 1, 2)), ((), ())),
                                        precision=precision))  # (Co, Ci)
    return jnp.stack(taps).reshape(kh, kw, *taps[0].shape).transpose(0, 1, 3, 2)


_strided.defvjp(_strided_fwd, _strided_bwd)
