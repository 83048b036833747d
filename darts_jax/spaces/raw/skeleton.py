"""What the Raw PC-DARTS supernet and derived network share (spec §4): the stem before the cells, the
cell plan, the head after them, and initialisation.

Lengths at 4 s, C = 64: sinc 63,876 -> MaxPool1d(3) 21,292 (s0) -> stem conv s2 10,646 (s1); each cell
ends with MaxPool1d(2): 5323, 2661, ..., 41 steps into the GRU.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from darts_jax.nn.layers import BatchNorm, init_variables
from darts_jax.spaces.pcdarts2d.skeleton import CellPlan, cell_plan
from darts_jax.spaces.raw.config import ModelConfig
from darts_jax.spaces.raw.frontend import FrontEnd
from darts_jax.spaces.raw.head import Head, init_unit_columns
from darts_jax.spaces.raw.operations import Conv1d, leaky_relu, max_pool

__all__ = ["CellPlan", "Head", "Stem", "cells", "head", "init_raw_variables"]


class Stem(nn.Module):
    """front end -> MaxPool1d(3) -> BN -> LReLU = s0; conv k3 s2 p1 -> BN -> LReLU = s1 (C -> C).

    Cell 0 applies LeakyReLU again before its convs: negatives pass with slope 0.09, as the authors'
    network does (spec §4 trap), so the two are not fused.
    """
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, train: bool):
        channels = self.config.init_channels
        feats_BxTxC = FrontEnd(self.config, name="frontend")(wave_BxS, train)
        s0 = leaky_relu(BatchNorm(True)(max_pool(feats_BxTxC, 3), train))
        s1 = leaky_relu(BatchNorm(True)(Conv1d(channels, 3, 2, 1)(s0), train))
        return s0, s1


def cells(config: ModelConfig) -> list[CellPlan]:
    """Cells ⌊L/3⌋ and ⌊2L/3⌋ double the channels (they do not stride); the stem's s0 is not reduced."""
    return cell_plan(config.layers, config.init_channels, first_reduction_prev=False)


def head(config: ModelConfig) -> Head:
    return Head(config.gru_hidden, config.gru_layers, config.embedding_dim, config.num_classes, name="head")


def init_raw_variables(module: nn.Module, seed: int, config: ModelConfig, *args, **kwargs) -> dict:
    """PyTorch-default variables of a raw module on a dummy (1, num_samples) input (shapes are traced
    only), with the P2SGrad weight columns normalised as the authors initialise them."""
    wave = jnp.zeros((1, config.num_samples), jnp.float32)
    return init_unit_columns(init_variables(module, seed, wave, *args, **kwargs))
