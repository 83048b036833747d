"""What the supernet and the derived network share: input features, stems, cell plan and head."""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from darts_jax.nn import frontends
from darts_jax.nn.layers import BatchNorm, Conv, Dense


@dataclasses.dataclass(frozen=True)
class CellPlan:
    reduction: bool
    reduction_prev: bool
    channels: int


def cell_plan(layers: int, init_channels: int, first_reduction_prev: bool = True) -> list[CellPlan]:
    """Cells ⌊L/3⌋ and ⌊2L/3⌋ reduce and double the channels; the first cell sees a reduced s0
    (2-D stems), or with `first_reduction_prev=False` a normal one (the raw space's front end)."""
    plan, channels, reduction_prev = [], init_channels, first_reduction_prev
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        channels *= 2 if reduction else 1
        plan.append(CellPlan(reduction, reduction_prev, channels))
        reduction_prev = reduction
    return plan


def input_features(module: nn.Module, frontend: str, wave_BxS, train: bool, mask: bool):
    """Waveforms to the network's NHWC input (B, F, T, 1), frequency-masked when training with `mask`."""
    feats_BxTxF = frontends.extract_features(frontend, wave_BxS)
    if train and mask:
        feats_BxTxF = frontends.frequency_mask(module.make_rng("mask"), feats_BxTxF,
                                               frontends.MASK_MAX_WIDTH[frontend])
    return jnp.swapaxes(feats_BxTxF, 1, 2)[..., None]


class Stems(nn.Module):
    """stem0: conv s2, BN, ReLU, conv s2, BN -> s0; stem1: ReLU, conv s2, BN -> s1."""
    channels: int

    @nn.compact
    def __call__(self, x, train: bool):
        bn = lambda: BatchNorm(True)  # noqa: E731
        s0 = nn.relu(bn()(Conv(self.channels // 2, 3, 2, 1)(x), train))
        s0 = bn()(Conv(self.channels, 3, 2, 1)(s0), train)
        s1 = bn()(Conv(self.channels, 3, 2, 1)(nn.relu(s0)), train)
        return s0, s1


class Head(nn.Module):
    """Global average pooling and the linear classifier; returns (logits, embedding)."""
    num_classes: int

    @nn.compact
    def __call__(self, x_BHWC):
        embedding = x_BHWC.mean(axis=(1, 2))
        return Dense(self.num_classes)(embedding), embedding


def init_wave():
    """The dummy input of initialisation: weight shapes do not depend on the audio length."""
    return jnp.zeros((1, 2048), jnp.float32)
