"""Building blocks with PyTorch semantics: initialisation, BatchNorm, convolutions, pooling.

Layout is NHWC throughout: H is the feature axis, W is time, C channels.
Trained networks only match the authors' when these details match theirs (spec §10).
"""
from __future__ import annotations

import contextvars
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct, traverse_util
from flax.core import meta
from jax import lax

from darts_jax.engine import collectives

_CONV_DIMS = ("NHWC", "HWIO", "NHWC")

# PyTorch's default Conv/Linear init is U(±1/sqrt(fan_in)).
FAN_IN = {
    "kernel": lambda shape: math.prod(shape[:-1]),  # dense conv (k, k, in, out) and linear (in, out)
    "depthwise": lambda shape: shape[0] * shape[1],  # (k, k, channels)
    "pointwise": lambda shape: shape[1],  # (edges, in, out)
}


@struct.dataclass
class InitSpec(meta.AxisMetadata):
    """A variable's initial value with how it was drawn: U(-bound, bound), or the constant `fill`.

    While `init_variables` traces a module, every initialiser here returns its value in this box, so
    the one declaration in the module is both what `module.init` draws and what `init_variables`
    reads: shapes and specs survive `jax.eval_shape`, which is all the fast host-side path needs.
    Elsewhere (a plain `module.init`) they return the bare array.
    """
    value: Any
    bound: float | None = struct.field(pytree_node=False, default=None)
    fill: float = struct.field(pytree_node=False, default=0.0)
    values: tuple | None = struct.field(pytree_node=False, default=None)  # `given`: exact values, flattened

    def unbox(self):
        return self.value

    def replace_boxed(self, val):
        return self.replace(value=val)

    def add_axis(self, index, params):
        return self

    def remove_axis(self, index, params):
        return self


_DECLARING = contextvars.ContextVar("darts_jax_declaring_init", default=False)


def _declared(value, **spec):
    return InitSpec(value, **spec) if _DECLARING.get() else value


def torch_uniform(fan_in: int):
    bound = 1.0 / fan_in**0.5

    def init(key, shape, dtype=jnp.float32):
        return _declared(jax.random.uniform(key, shape, dtype, -bound, bound), bound=bound)

    return init


def constant(fill: float):
    """Initialiser of a parameter; of a variable with `key=None` (`self.variable(col, name, init, None, shape)`)."""
    def init(key, shape, dtype=jnp.float32):
        return _declared(jnp.full(shape, fill, dtype), fill=fill)

    return init


def given(values):
    """Initialiser of a parameter that starts at exactly `values` (e.g. a filter bank's band edges)."""
    flat = tuple(float(v) for v in np.asarray(values, np.float64).reshape(-1))

    def init(key, shape, dtype=jnp.float32):
        return _declared(jnp.asarray(np.reshape(flat, shape), dtype), values=flat)

    return init


def _torch_param(module: nn.Module, kind: str, shape):
    return module.param(kind, torch_uniform(FAN_IN[kind](shape)), shape)


def init_variables(module: nn.Module, seed: int, *args, **kwargs) -> dict:
    """Variables of `module` as its initialisers declare them, drawn on the host with NumPy.

    Flax's own init derives one key per parameter through XLA; compiling those hundreds of threefry
    calls costs minutes on CPU, while shapes and specs from `jax.eval_shape` plus NumPy take about a
    second. Uniform draws are taken in sorted parameter-path order, so values depend only on the seed
    and the parameter names, not on the backend.
    """
    token = _DECLARING.set(True)
    try:
        boxed = jax.eval_shape(lambda: module.init(jax.random.key(0), *args, **kwargs))
    finally:
        _DECLARING.reset(token)
    rng = np.random.default_rng(seed)
    variables = {}
    for collection in ("params", "batch_stats"):
        flat = traverse_util.flatten_dict(boxed.get(collection, {}))
        values = {}
        for path in sorted(flat):
            spec = flat[path]
            if not isinstance(spec, InitSpec):
                raise TypeError(f"{'/'.join(path)}: declared without a darts_jax.nn.layers initialiser")
            shape = spec.value.shape
            if spec.values is not None:
                values[path] = np.reshape(np.asarray(spec.values, np.float32), shape)
            elif spec.bound is None:
                values[path] = np.full(shape, spec.fill, np.float32)
            else:
                values[path] = rng.uniform(-spec.bound, spec.bound, shape).astype(np.float32)
        variables[collection] = jax.tree.map(jnp.asarray, traverse_util.unflatten_dict(values))
    return variables


def conv2d(x, kernel_HWIO, stride=1, padding=0, dilation=1, groups=1):
    """Symmetric explicit padding, as PyTorch: never 'SAME', which is asymmetric at stride 2."""
    return lax.conv_general_dilated(
        x, kernel_HWIO, window_strides=(stride, stride), padding=((padding, padding), (padding, padding)),
        rhs_dilation=(dilation, dilation), dimension_numbers=_CONV_DIMS, feature_group_count=groups)


def depthwise_conv2d(x, kernel_HWxM, stride, padding, dilation, impl: str):
    """Depthwise conv whose output channels are `M = copies * C_in`, ordered (copy, channel).

    Copy e of channel c applies kernel[..., e*C_in + c] to input channel c, so several edges that read the
    same tensor share one call. XLA:CPU's grouped convolution is the slow path (spec/jax_notes §7): there
    a dense conv with a block-diagonal kernel is 3-4x faster while the channel count stays small.
    """
    c_in = x.shape[-1]
    copies = kernel_HWxM.shape[-1] // c_in
    if impl == "auto":
        impl = "dense" if jax.default_backend() == "cpu" and kernel_HWxM.shape[-1] <= 128 else "grouped"
    if impl == "dense":
        k = kernel_HWxM.shape[0]
        per_copy_HWxExC = kernel_HWxM.reshape(k, k, copies, c_in)
        dense_HWIxExC = per_copy_HWxExC[:, :, None, :, :] * jnp.eye(c_in, dtype=x.dtype)[:, None, :]
        return conv2d(x, dense_HWIxExC.reshape(k, k, c_in, copies * c_in), stride, padding, dilation)
    if copies > 1:
        x = jnp.tile(x, (1, 1, 1, copies))
    return conv2d(x, kernel_HWxM[:, :, None, :], stride, padding, dilation, groups=copies * c_in)


class Conv(nn.Module):
    """Bias-free dense conv (or grouped per-edge 1x1 conv) with PyTorch initialisation."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x):
        w = _torch_param(self, "kernel", (self.kernel, self.kernel, x.shape[-1], self.features))
        return conv2d(x, w, self.stride, self.padding)


class DepthwiseConv(nn.Module):
    copies: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    impl: str = "auto"

    @nn.compact
    def __call__(self, x):
        w = _torch_param(self, "depthwise", (self.kernel, self.kernel, self.copies * x.shape[-1]))
        return depthwise_conv2d(x, w, self.stride, self.padding, self.dilation, self.impl)


class EdgePointwise(nn.Module):
    """Per-edge 1x1 convs: input channels ordered (edge, c_in), output (edge, c_out)."""
    edges: int
    features: int

    @nn.compact
    def __call__(self, x):
        c_in = x.shape[-1] // self.edges
        w = _torch_param(self, "pointwise", (self.edges, c_in, self.features))
        x_BHWxExC = x.reshape(*x.shape[:-1], self.edges, c_in)
        y = jnp.einsum("bhwec,ecd->bhwed", x_BHWxExC, w)
        return y.reshape(*x.shape[:-1], self.edges * self.features)


class BatchNorm(nn.Module):
    """PyTorch BatchNorm2d: momentum 0.1, eps 1e-5, unbiased running variance.

    Under a data-parallel map (darts_jax.engine.collectives), batch statistics are taken over the
    global batch, so a step on N devices computes exactly what one device would on the whole batch.
    """
    affine: bool = True
    momentum: float = 0.1
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x, train: bool):
        channels = x.shape[-1]
        running_mean = self.variable("batch_stats", "mean", constant(0.0), None, (channels,))
        running_var = self.variable("batch_stats", "var", constant(1.0), None, (channels,))
        if train:
            axes = tuple(range(x.ndim - 1))
            count = x.size // channels * collectives.device_count()
            mean = collectives.global_mean(x.mean(axes))
            var = collectives.global_mean(jnp.square(x - mean).mean(axes))
            if not self.is_initializing():
                m = self.momentum
                running_mean.value = (1 - m) * running_mean.value + m * mean
                running_var.value = (1 - m) * running_var.value + m * var * count / (count - 1)
        else:
            mean, var = running_mean.value, running_var.value
        y = (x - mean) * lax.rsqrt(var + self.epsilon)
        if self.affine:
            y = y * self.param("scale", constant(1.0), (channels,)) + self.param("bias", constant(0.0), (channels,))
        return y


class Dense(nn.Module):
    features: int

    @nn.compact
    def __call__(self, x):
        w = _torch_param(self, "kernel", (x.shape[-1], self.features))
        return x @ w + self.param("bias", torch_uniform(x.shape[-1]), (self.features,))


def _pool(x, init, op, window, stride, pads):
    return lax.reduce_window(x, init, op, (1, window, window, 1), (1, stride, stride, 1),
                             ((0, 0), pads[0], pads[1], (0, 0)))


def max_pool_3x3(x, stride):
    """Padding 1 with -inf, so padded positions never win."""
    return _pool(x, -jnp.inf, lax.max, 3, stride, ((1, 1), (1, 1)))


def avg_pool_3x3(x, stride):
    """count_include_pad=False: each window is divided by its number of valid taps."""
    pads = ((1, 1), (1, 1))
    window_sum = _pool(x, 0.0, lax.add, 3, stride, pads)
    valid = _pool(jnp.ones((1, *x.shape[1:3], 1), x.dtype), 0.0, lax.add, 3, stride, pads)
    return window_sum / valid


def max_pool_2x2_ceil(x):
    """2x2/2 max-pool in ceil mode: odd sizes keep their last row/column (spec §2.2 quirk)."""
    return _pool(x, -jnp.inf, lax.max, 2, 2, ((0, x.shape[1] % 2), (0, x.shape[2] % 2)))


def channel_shuffle(x, groups: int):
    """PyTorch's view(g, C/g) -> transpose -> flatten, over the last axis."""
    if groups == 1:
        return x
    c = x.shape[-1]
    return x.reshape(*x.shape[:-1], groups, c // groups).swapaxes(-1, -2).reshape(x.shape)


def drop_path(key, x, drop_prob):
    """Per-sample Bernoulli keep mask, kept samples scaled by 1/(1-p); `drop_prob` may be traced."""
    keep = 1.0 - drop_prob
    mask = jax.random.bernoulli(key, keep, (x.shape[0],) + (1,) * (x.ndim - 1))
    return jnp.where(mask, x / keep, 0.0)

