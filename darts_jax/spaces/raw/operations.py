"""The 1-D candidate operations of Raw PC-DARTS (spec §4), on (B, T, C), shared by supernet and network.

Every edge has stride 1; every ReLU of PC-DARTS is LeakyReLU(0.3). Convolutional ops take `edges`: the
supernet evaluates one primitive for every edge that reads the same state in one call, outputs ordered
(edge, channel), as the 2-D space does; the derived network uses edges = 1.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from darts_jax.nn.layers import BatchNorm, torch_uniform
from darts_jax.spaces.raw.frontend import conv1d

LEAKY_SLOPE = 0.3


def leaky_relu(x):
    return jax.nn.leaky_relu(x, LEAKY_SLOPE)


def _pool(x_BxTxC, init, op, window, stride, padding):
    return lax.reduce_window(x_BxTxC, init, op, (1, window, 1), (1, stride, 1), ((0, 0), padding, (0, 0)))


def max_pool_3(x_BxTxC):
    """Window 3, stride 1, padding 1 with -inf, so padded positions never win."""
    return _pool(x_BxTxC, -jnp.inf, lax.max, 3, 1, (1, 1))


def avg_pool_3(x_BxTxC):
    """Window 3, stride 1, padding 1, count_include_pad=False: divided by the number of valid taps."""
    window_sum = _pool(x_BxTxC, 0.0, lax.add, 3, 1, (1, 1))
    valid = _pool(jnp.ones((1, x_BxTxC.shape[1], 1), x_BxTxC.dtype), 0.0, lax.add, 3, 1, (1, 1))
    return window_sum / valid


def max_pool(x_BxTxC, window: int):
    """MaxPool1d(window) in floor mode (stride = window): a trailing partial window is dropped."""
    return _pool(x_BxTxC, -jnp.inf, lax.max, window, window, (0, 0))


POOLS = {"max_pool_3": max_pool_3, "avg_pool_3": avg_pool_3}


def conv_primitive(name: str) -> tuple[str, int] | None:
    """('std' | 'dil', kernel) for a convolutional primitive name, None otherwise."""
    family, _, size = name.rpartition("_")
    if family in ("std_conv", "dil_conv") and size in ("3", "5"):
        return family[:3], int(size)
    return None


class Conv1d(nn.Module):
    """Bias-free dense Conv1d with PyTorch initialisation, weights (kernel, in, out)."""
    features: int
    kernel: int = 1
    stride: int = 1
    padding: int = 0

    @nn.compact
    def __call__(self, x_BxTxC):
        c_in = x_BxTxC.shape[-1]
        w = self.param("kernel", torch_uniform(self.kernel * c_in), (self.kernel, c_in, self.features))
        return conv1d(x_BxTxC, w, self.stride, self.padding)


class StdConv(nn.Module):
    """std_conv_k for `edges` edges reading one input: LReLU -> Conv1d(C -> C, k, (k-1)/2) -> BN."""
    features: int
    kernel: int
    affine: bool
    edges: int = 1

    @nn.compact
    def __call__(self, x_BxTxC, train: bool):
        y = Conv1d(self.edges * self.features, self.kernel, padding=(self.kernel - 1) // 2)(leaky_relu(x_BxTxC))
        return BatchNorm(self.affine)(y, train)


class DilConv(nn.Module):
    """dil_conv_k for `edges` edges reading one input: LReLU -> depthwise Conv1d(k, dilation 2,
    padding k-1) -> per-edge 1x1 Conv1d -> BN."""
    features: int
    kernel: int
    affine: bool
    edges: int = 1

    @nn.compact
    def __call__(self, x_BxTxC, train: bool):
        c_in = x_BxTxC.shape[-1]
        # Copy e of channel c is depthwise channel e·C + c: tile the input once per edge.
        x = jnp.tile(leaky_relu(x_BxTxC), (1, 1, self.edges))
        depthwise = self.param("depthwise", torch_uniform(self.kernel), (self.kernel, 1, self.edges * c_in))
        x = conv1d(x, depthwise, padding=self.kernel - 1, dilation=2, groups=self.edges * c_in)
        pointwise = self.param("pointwise", torch_uniform(c_in), (self.edges, c_in, self.features))
        x_BxTxExC = x.reshape(*x.shape[:-1], self.edges, c_in)
        y = jnp.einsum("btec,ecd->bted", x_BxTxExC, pointwise).reshape(*x.shape[:-1], self.edges * self.features)
        return BatchNorm(self.affine)(y, train)


def conv_op(name: str, features: int, affine: bool, edges: int = 1) -> nn.Module:
    family, kernel = conv_primitive(name)
    return (StdConv if family == "std" else DilConv)(features, kernel, affine, edges)


class Preprocess(nn.Module):
    """Cell input preprocessing, BN affine=False: LReLU -> 1x1 conv -> [MaxPool1d(2)] -> BN.

    `halve` for s0 (which is twice as long as s1). After a normal cell the authors call it
    ReLUConvBN_half; after a reduction cell FactorizedReduce-1d, whose two stride-1 1x1 convs of C/2
    see the same input and are concatenated: exactly one 1x1 conv of C, so one module serves both.
    """
    features: int
    halve: bool

    @nn.compact
    def __call__(self, x_BxTxC, train: bool):
        y = Conv1d(self.features)(leaky_relu(x_BxTxC))
        if self.halve:
            y = max_pool(y, 2)
        return BatchNorm(False)(y, train)


class Op(nn.Module):
    """One primitive on one edge of a derived cell (BN affine, pools without BN)."""
    primitive: str
    features: int

    @nn.compact
    def __call__(self, x_BxTxC, train: bool):
        if self.primitive in POOLS:
            return POOLS[self.primitive](x_BxTxC)
        if self.primitive == "skip_connect":
            return x_BxTxC
        if self.primitive == "none":
            return jnp.zeros_like(x_BxTxC)
        return conv_op(self.primitive, self.features, True)(x_BxTxC, train)
