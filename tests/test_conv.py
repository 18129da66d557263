"""models/conv.py: the encoders' strided convolutions compute XLA's forward values and input
gradients, and a weight gradient equal to float32 rounding; a float64 NumPy sum over the
definition is the reference for both gradients."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from models import conv, encoders

CASES = [  # input (N, H, W, C), kernel, stride, padding
    ((4, 9, 9, 5), 3, 2, "SAME"),  # odd size: SAME pads (1, 1)
    ((4, 8, 8, 5), 3, 2, "SAME"),  # even size: SAME pads (0, 1)
    ((4, 8, 8, 5), 1, 2, "SAME"),  # ResNet's 1×1 shortcut
    ((3, 11, 7, 4), 3, 2, ((1, 1), (0, 2))),  # explicit, unequal pads
    ((2, 10, 10, 3), 3, 3, "VALID"),
]


def reference_grads(x, w, g, stride, pads):
    """d<g, conv(x, w)>/dx and /dw in float64, one output pixel and tap at a time."""
    x, w, g = (np.asarray(a, np.float64) for a in (x, w, g))
    xp = np.pad(x, ((0, 0), *pads, (0, 0)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    kh, kw = w.shape[:2]
    for i in range(kh):
        for j in range(kw):
            rows = slice(i, i + stride * (g.shape[1] - 1) + 1, stride)
            cols = slice(j, j + stride * (g.shape[2] - 1) + 1, stride)
            dw[i, j] = np.einsum("nhwc,nhwo->co", xp[:, rows, cols], g)
            dxp[:, rows, cols] += np.einsum("nhwo,co->nhwc", g, w[i, j])
    h, wd = x.shape[1:3]
    return dxp[:, pads[0][0]:pads[0][0] + h, pads[1][0]:pads[1][0] + wd], dw


@pytest.mark.parametrize("shape,k,stride,padding", CASES)
def test_strided_conv_has_xlas_values_and_the_reference_gradients(shape, k, stride, padding):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=shape), jnp.float32)
    w = jnp.asarray(rng.normal(size=(k, k, shape[3], 6)), jnp.float32)

    def plain(x, w):
        return lax.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=conv.NHWC)

    def ours(x, w):
        return conv.conv_general_dilated(x, w, (stride, stride), padding, dimension_numbers=conv.NHWC)

    assert "custom_vjp" in str(jax.make_jaxpr(ours)(x, w))  # the strided path was taken
    y = jax.jit(ours)(x, w)
    np.testing.assert_array_equal(y, jax.jit(plain)(x, w))  # the same forward pass
    g = jnp.asarray(rng.normal(size=y.shape), jnp.float32)
    pads = (lax.padtype_to_pads(shape[1:3], (k, k), (stride, stride), padding)
            if isinstance(padding, str) else padding)
    ref_dx, ref_dw = reference_grads(x, w, g, stride, pads)
    dx, dw = jax.jit(lambda x, w, g: jax.vjp(ours, x, w)[1](g))(x, w, g)
    xla_dx, xla_dw = jax.jit(lambda x, w, g: jax.vjp(plain, x, w)[1](g))(x, w, g)
    np.testing.assert_array_equal(dx, xla_dx)  # XLA's own input gradient
    # Each weight-gradient entry sums N·Ho·Wo ≤ 100 products in another order than XLA's;
    # float32 gives both about 1e-7 of the entries' scale (2e-7 measured, in norm):
    for ours_g, xla_g, ref in ((dw, xla_dw, ref_dw), (dx, xla_dx, ref_dx)):
        scale = np.linalg.norm(ref)
        assert np.linalg.norm(ours_g - ref) < 1e-6 * scale
        assert np.linalg.norm(xla_g - ref) < 1e-6 * scale


def test_other_convolutions_are_laxs_own():
    x, w = jnp.ones((2, 8, 8, 3)), jnp.ones((3, 3, 3, 4))
    for kwargs in ({"window_strides": (1, 1)}, {"window_strides": (2, 2), "rhs_dilation": (2, 2)},
                   {"window_strides": (2, 2), "lhs_dilation": (2, 2)}):
        jaxpr = str(jax.make_jaxpr(functools.partial(
            conv.conv_general_dilated, padding=((1, 1), (1, 1)), dimension_numbers=conv.NHWC,
            **kwargs))(x, w))
        assert "custom_vjp" not in jaxpr and "conv_general_dilated" in jaxpr
    stem = jnp.ones((7, 7, 3, 4))  # more taps than MAX_TAPS
    assert "custom_vjp" not in str(jax.make_jaxpr(lambda x, w: conv.conv_general_dilated(
        x, w, (2, 2), "SAME", dimension_numbers=conv.NHWC))(x, stem))


def test_gpu_and_tpu_compile_xlas_own_weight_gradient():
    """Lowered for another platform, the weight gradient is autodiff's convolution; for the
    CPU, one product per tap."""
    x, w = jnp.ones((2, 8, 8, 4)), jnp.ones((3, 3, 4, 5))

    def loss(w):
        return jnp.sum(conv.conv_general_dilated(x, w, (2, 2), "SAME",
                                                 dimension_numbers=conv.NHWC) ** 2)

    ops = {}
    for platform in ("cpu", "cuda", "tpu"):
        text = jax.export.export(jax.jit(jax.grad(loss)), platforms=[platform])(w).mlir_module()
        ops[platform] = (text.count("stablehlo.convolution"), text.count("stablehlo.dot_general"))
    assert ops == {"cpu": (1, 9), "cuda": (2, 0), "tpu": (2, 0)}  # forward (+ gradient) convs


def test_the_convnets_loss_and_gradients_match_flax_convolutions(monkeypatch):
    """The quickstart's ConvNet with Flax's own convolutions: the same loss bit for bit and
    gradients equal to float32 rounding (1.7e-7 of their norm measured; bound 1e-5). The
    ResNets' strided convolutions (3×3 and 1×1 shortcuts) are the cases above."""
    model = encoders.build_encoder("convnet", image_size=16, width=8)
    x = jax.random.normal(jax.random.key(0), (16, 16, 16, 3))
    variables = jax.jit(model.init)(jax.random.key(1), x)

    def loss(params):
        feats, _ = model.apply({**variables, "params": params}, x, mutable=["batch_stats"])
        return jnp.sum(jnp.tanh(feats) * jnp.arange(feats.shape[1]))

    ours = jax.jit(jax.value_and_grad(loss))(variables["params"])
    monkeypatch.setattr(encoders, "Conv", encoders.nn.Conv)
    flax_own = jax.jit(jax.value_and_grad(loss))(variables["params"])
    assert float(ours[0]) == float(flax_own[0])
    a, b = (jnp.concatenate([jnp.ravel(v) for v in jax.tree.leaves(t[1])]) for t in (ours, flax_own))
    assert float(jnp.linalg.norm(a - b)) < 1e-5 * float(jnp.linalg.norm(b))
