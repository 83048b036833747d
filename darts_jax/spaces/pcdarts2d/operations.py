"""The candidate operations of the PC-DARTS search space (spec §2.1), shared by supernet and derived net.

Convolutional ops take `edges`: the supernet evaluates the same primitive for every edge that reads one
tensor in a single call, with outputs ordered (edge, channel). The derived network uses edges = 1.
Grouping cuts the number of distinct op instances XLA compiles by about 3x (spec/jax_notes §7).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from darts_jax.nn.layers import BatchNorm, Conv, DepthwiseConv, EdgePointwise, avg_pool_3x3, max_pool_3x3

POOLS = {"max_pool_3x3": max_pool_3x3, "avg_pool_3x3": avg_pool_3x3}


def conv_primitive(name: str) -> tuple[str, int] | None:
    """('sep' | 'dil', kernel) for a convolutional primitive name, None otherwise."""
    family, _, size = name.rpartition("_")
    if family in ("sep_conv", "dil_conv") and size in ("3x3", "5x5"):
        return family[:3], int(size[0])
    return None


class ConvUnit(nn.Module):
    """ReLU -> depthwise kxk -> per-edge 1x1 -> BN, without bias.

    `shared_input`: the input is one tensor read by all edges (copied per edge by the depthwise conv);
    otherwise it already holds one slice per edge.
    """
    edges: int
    features: int
    kernel: int
    stride: int
    dilation: int
    shared_input: bool
    affine: bool
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        padding = self.dilation * (self.kernel - 1) // 2
        x = DepthwiseConv(self.edges if self.shared_input else 1, self.kernel, self.stride, padding,
                          self.dilation, self.depthwise)(nn.relu(x))
        x = EdgePointwise(self.edges, self.features)(x)
        return BatchNorm(self.affine)(x, train)


class ConvOp(nn.Module):
    """sep_conv_k (two units, only the first strided) or dil_conv_k (one unit, dilation 2)."""
    family: str
    kernel: int
    features: int
    stride: int
    affine: bool
    edges: int = 1
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        unit = dict(edges=self.edges, features=self.features, kernel=self.kernel, affine=self.affine,
                    depthwise=self.depthwise)
        if self.family == "dil":
            return ConvUnit(stride=self.stride, dilation=2, shared_input=True, **unit)(x, train)
        x = ConvUnit(stride=self.stride, dilation=1, shared_input=True, **unit)(x, train)
        return ConvUnit(stride=1, dilation=1, shared_input=False, **unit)(x, train)


class FactorizedReduce(nn.Module):
    """ReLU -> two 1x1 stride-2 convs of C_out/2 each -> concat -> BN.

    The authors removed upstream's one-pixel shift of the second conv's input (spec §2.1), so both
    convs see the same input and together are exactly one 1x1 conv with C_out outputs.
    """
    features: int
    affine: bool
    edges: int = 1

    @nn.compact
    def __call__(self, x, train: bool):
        x = Conv(self.edges * self.features, kernel=1, stride=2)(nn.relu(x))
        return BatchNorm(self.affine)(x, train)


class ReLUConvBN(nn.Module):
    features: int
    affine: bool

    @nn.compact
    def __call__(self, x, train: bool):
        return BatchNorm(self.affine)(Conv(self.features)(nn.relu(x)), train)


class Op(nn.Module):
    """One primitive on one edge of a derived cell (BN affine, pools without BN)."""
    primitive: str
    features: int
    stride: int
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, x, train: bool):
        if self.primitive in POOLS:
            return POOLS[self.primitive](x, self.stride)
        if self.primitive == "skip_connect":
            if self.stride == 1:
                return x
            return FactorizedReduce(self.features, True)(x, train)
        if self.primitive == "none":
            return jnp.zeros_like(x[:, ::self.stride, ::self.stride])
        family, kernel = conv_primitive(self.primitive)
        return ConvOp(family, kernel, self.features, self.stride, True, depthwise=self.depthwise,
                      )(x, train)
