"""The Raw PC-DARTS search supernet (spec §4): 1-D partial-channel mixed ops, cells, GRU and P2SGrad.

The cell topology (4 nodes, 14 edges, α/β per cell kind, β normalised within each node) is PC-DARTS'
and shared with the 2-D space; α/β are a pytree of their own, passed to `apply`. Edges never stride,
so the bypassed channels are the identity. The authors evaluate each mixed op twice per forward
(spec §4 trap); that changes no output and is not copied. Samplers (`sampler`, `tau` of `apply`) work
as in the 2-D space (darts_jax.spaces.pcdarts2d.supernet), with which this space shares the op mixing.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.nn.layers import BatchNorm
from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces.pcdarts2d.supernet import (
    init_arch,
    mix_cell,
    mix_ops,
    op_child_names,
    sampled_cell_weights,
    skips_unselected_ops,
)
from darts_jax.spaces.raw.config import ModelConfig
from darts_jax.spaces.raw.operations import POOLS, DilConv, Preprocess, StdConv, conv_primitive, max_pool
from darts_jax.spaces.raw.skeleton import CellPlan, Stem, cells, head, init_raw_variables


class MixedOpGroup(nn.Module):
    """The mixed ops of all edges leaving one state, on its first C/K channels.

    Returns the weighted op sums (B, T, edges, C/K) and the bypassed channels (None when K = 1).
    Pools (with BN affine=False, supernet only) and identity give the same output on every edge, so
    they run once.
    """
    primitives: Sequence[str]
    features: int
    edges: int
    partial_k: int
    skip_unselected: bool = False

    @staticmethod
    def _conv_class(name):
        family, _ = conv_primitive(name)
        return StdConv if family == "std" else DilConv

    def _class_of(self, name):
        if name in POOLS:
            return "BatchNorm"
        return self._conv_class(name).__name__ if conv_primitive(name) else None

    @nn.compact
    def __call__(self, x_BxTxC, op_weights_NxO, train: bool):
        partial = x_BxTxC[..., :self.features]
        names = op_child_names(self.primitives, self._class_of)

        def output_shape(name):
            shared = name in POOLS or name == "skip_connect"  # one output for all edges
            return (*partial.shape[:-1], 1 if shared else self.edges, self.features)

        def run_op(name, partial):
            if name in POOLS:
                return BatchNorm(False, name=names[name])(POOLS[name](partial), train)[..., None, :]
            if name == "skip_connect":
                return partial[..., None, :]
            y = self._conv_class(name)(self.features, conv_primitive(name)[1], False, self.edges,
                                       name=names[name])(partial, train)
            return y.reshape(*y.shape[:-1], self.edges, self.features)

        mixed = mix_ops(self, self.primitives, op_weights_NxO, partial, run_op, output_shape, names,
                        self.skip_unselected)
        return mixed, (x_BxTxC[..., self.features:] if self.partial_k > 1 else None)


class SearchCell(nn.Module):
    plan: CellPlan
    primitives: Sequence[str]
    partial_k: int
    skip_unselected: bool = False

    @nn.compact
    def __call__(self, s0, s1, op_weights_ExO, edge_weights_E, train: bool):
        channels, k = self.plan.channels, self.partial_k
        states = [Preprocess(channels, halve=True)(s0, train), Preprocess(channels, halve=False)(s1, train)]

        def group(source, edges):
            return MixedOpGroup(self.primitives, channels // k, len(edges), k, self.skip_unselected)(
                states[source], op_weights_ExO[..., np.array(edges), :], train)

        return max_pool(jnp.concatenate(mix_cell(states, group, edge_weights_E, k), axis=-1), 2)


class SearchNetwork(nn.Module):
    """Waveforms (B, S) and architecture parameters to cos θ (B, 2); with a `sampler`, the op weights are
    drawn at temperature `tau`; `aux_skip` is DARTS-' β."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, arch: dict, train: bool, sampler: SamplerConfig | None = None, tau=1.0,
                 aux_skip=None):
        cfg = self.config
        s0, s1 = Stem(cfg, name="stem")(wave_BxS, train)
        weights = sampled_cell_weights(self, arch, sampler, tau, wave_BxS.shape[0], cfg.primitives, aux_skip)
        skip = skips_unselected_ops(sampler)
        for plan in cells(cfg):
            op_weights_ExO, edge_weights_E = weights["reduce" if plan.reduction else "normal"]
            s0, s1 = s1, SearchCell(plan, cfg.primitives, cfg.partial_k, skip)(s0, s1, op_weights_ExO,
                                                                               edge_weights_E, train)
        cos_BxK, _ = head(cfg)(s1)
        return cos_BxK


def init_supernet(seed: int, config: ModelConfig) -> tuple[dict, dict]:
    """(variables with params and batch_stats, architecture parameters α/β, 1e-3·N(0, 1))."""
    arch = init_arch(jax.random.key(seed), len(config.primitives))
    return init_raw_variables(SearchNetwork(config), seed, config, arch, train=False), arch
