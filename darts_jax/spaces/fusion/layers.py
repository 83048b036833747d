"""The fusion space's layers (spec §2.3, §2.4), channels last: features are (B, L, C).

`adaptive_max_pool` is the parameter-free first half of BM-NAS' reshape layer, with PyTorch's adaptive
windows [floor(iD/L), ceil((i+1)D/L)) computed in Python so shapes stay static; it runs once, when the
backbone features are cached. `FeatureReshape` is the learned second half. Every dropout draws from the
'mask' stream, the one the search and training tasks hand a module in training.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from darts_jax.nn.layers import BatchNorm
from darts_jax.spaces.fusion.config import FUSION_OPS

RNG = "mask"
ATTENTION_DROPOUT = 0.1


def pool_windows(size: int, length: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive pooling windows of `size` positions into `length`."""
    return [(i * size // length, math.ceil((i + 1) * size / length)) for i in range(length)]


def adaptive_max_pool(tap_BxDx___xC, length: int):
    """(B, D1, ..., C) -> (B, length, C): max over each window of D1 and over every further axis.

    A vector tap (B, C) counts as D1 = 1 and is repeated `length` times.
    """
    if tap_BxDx___xC.ndim == 2:
        return jnp.repeat(tap_BxDx___xC[:, None, :], length, axis=1)
    flat = tap_BxDx___xC.reshape(tap_BxDx___xC.shape[0], tap_BxDx___xC.shape[1], -1, tap_BxDx___xC.shape[-1])
    pooled = [flat[:, a:b].max(axis=(1, 2)) for a, b in pool_windows(flat.shape[1], length)]
    return jnp.stack(pooled, axis=1)


def split_taps(packed_BxLxC, tap_channels: Sequence[int]) -> list:
    """The packed cache row (B, L, Σ channels) as one (B, L, C_i) array per tap."""
    if not tap_channels:
        raise ValueError("tap_channels: empty; a fusion network's tap widths come from its feature cache "
                         "(`darts-jax pretrain-backbones`), or give them in the model config")
    bounds = [0]
    for width in tap_channels:
        bounds.append(bounds[-1] + width)
    return [packed_BxLxC[..., a:b] for a, b in zip(bounds, bounds[1:])]


class Dropout(nn.Module):
    rate: float

    @nn.compact
    def __call__(self, x, train: bool):
        return nn.Dropout(self.rate, rng_collection=RNG)(x, deterministic=not train or self.rate == 0)


class ConvBnAct(nn.Module):
    """1x1 conv (a Dense over channels), BatchNorm, activation ('relu' or 'glu'), dropout."""
    features: int
    activation: str
    dropout: float

    @nn.compact
    def __call__(self, x, train: bool):
        x = BatchNorm()(nn.Dense(self.features)(x), train)
        if self.activation == "glu":
            half = self.features // 2
            x = x[..., :half] * jax.nn.sigmoid(x[..., half:])
        else:
            x = nn.relu(x)
        return Dropout(self.dropout)(x, train)


class FeatureReshape(nn.Module):
    """A pooled tap (B, L, C_in) to (B, L, C): 1x1 conv, BatchNorm, ReLU, dropout."""
    channels: int
    dropout: float

    @nn.compact
    def __call__(self, x_BxLxCin, train: bool):
        return ConvBnAct(self.channels, "relu", self.dropout)(x_BxLxCin, train)


def layer_norm_LxC(name: str | None = None):
    """PyTorch's LayerNorm([C, L]): over both trailing axes, with a scale and bias per element."""
    return nn.LayerNorm(reduction_axes=(-2, -1), feature_axes=(-2, -1), epsilon=1e-5, name=name)


class FusionOp(nn.Module):
    """One fusion primitive of two (B, L, C) inputs."""
    op: str
    dropout: float

    @nn.compact
    def __call__(self, x, y, train: bool):
        channels = x.shape[-1]
        if self.op == "Sum":
            return x + y
        if self.op == "ScaleDotAttn":
            # Positions are tokens, channels features; queries from x, keys and values from y, no projections.
            scores_BxLxL = jnp.einsum("blc,bmc->blm", x, y) / math.sqrt(channels)
            out = jnp.einsum("blm,bmc->blc", jax.nn.softmax(scores_BxLxL, axis=-1), y)
            return layer_norm_LxC()(Dropout(ATTENTION_DROPOUT)(out, train))
        both = jnp.concatenate([x, y], axis=-1)
        if self.op == "LinearGLU":
            return ConvBnAct(2 * channels, "glu", self.dropout)(both, train)
        if self.op == "ConcatFC":
            return ConvBnAct(channels, "relu", self.dropout)(both, train)
        raise ValueError(f"fusion op: {self.op!r} is not one of {', '.join(FUSION_OPS)}")


class NodeOutput(nn.Module):
    """How a fusion node ends: its inner steps combined, 1x1 conv, BatchNorm, ReLU, dropout, + x, LayerNorm.

    'weighted_sum' is STGS' Σ_t ω_t s_t with ω learned with the weights (initialised U[0, 1)),
    'concat_conv' BM-NAS' concatenation of the inner steps before the conv.
    """
    aggregation: str
    dropout: float

    @nn.compact
    def __call__(self, x, inner_states: Sequence, train: bool):
        if self.aggregation == "weighted_sum":
            omega = self.param("omega", nn.initializers.uniform(1.0), (len(inner_states),))
            combined = sum(omega[t] * s for t, s in enumerate(inner_states))
        else:
            combined = jnp.concatenate(list(inner_states), axis=-1)
        out = ConvBnAct(x.shape[-1], "relu", self.dropout)(combined, train)
        return layer_norm_LxC()(out + x)


class Classifier(nn.Module):
    """The cell output: concatenated last steps (B, L, kC), LayerNorm over (L, kC), ReLU, flatten, Linear."""
    num_classes: int

    @nn.compact
    def __call__(self, steps: Sequence):
        x = nn.relu(layer_norm_LxC()(jnp.concatenate(list(steps), axis=-1)))
        embedding = x.reshape(x.shape[0], -1)
        return nn.Dense(self.num_classes)(embedding), embedding
