"""The Raw PC-DARTS search supernet (spec §4): 1-D partial-channel mixed ops, cells, GRU and P2SGrad.

The cell topology (4 nodes, 14 edges, α/β per cell kind, β normalised within each node) is PC-DARTS'
and shared with the 2-D space; α/β are a pytree of their own, passed to `apply`. Edges never stride,
so the bypassed channels are the identity. The authors evaluate each mixed op twice per forward
(spec §4 trap); that changes no output and is not copied.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.nn.layers import BatchNorm
from darts_jax.spaces.pcdarts2d.supernet import cell_weights, init_arch, mix_cell
from darts_jax.spaces.raw.config import ModelConfig
from darts_jax.spaces.raw.operations import POOLS, Preprocess, conv_op, max_pool
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

    @nn.compact
    def __call__(self, x_BxTxC, op_weights_NxO, train: bool):
        partial = x_BxTxC[..., :self.features]
        mixed = 0.0
        for o, name in enumerate(self.primitives):
            if name == "none":
                continue
            if name in POOLS:
                y = BatchNorm(False)(POOLS[name](partial), train)[..., None, :]
            elif name == "skip_connect":
                y = partial[..., None, :]
            else:
                y = conv_op(name, self.features, False, self.edges)(partial, train)
                y = y.reshape(*y.shape[:-1], self.edges, self.features)
            mixed = mixed + op_weights_NxO[:, o, None] * y
        return mixed, (x_BxTxC[..., self.features:] if self.partial_k > 1 else None)


class SearchCell(nn.Module):
    plan: CellPlan
    primitives: Sequence[str]
    partial_k: int

    @nn.compact
    def __call__(self, s0, s1, op_weights_ExO, edge_weights_E, train: bool):
        channels, k = self.plan.channels, self.partial_k
        states = [Preprocess(channels, halve=True)(s0, train), Preprocess(channels, halve=False)(s1, train)]

        def group(source, edges):
            return MixedOpGroup(self.primitives, channels // k, len(edges), k)(
                states[source], op_weights_ExO[np.array(edges)], train)

        return max_pool(jnp.concatenate(mix_cell(states, group, edge_weights_E, k), axis=-1), 2)


class SearchNetwork(nn.Module):
    """Waveforms (B, S) and architecture parameters to cos θ (B, 2)."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, arch: dict, train: bool):
        cfg = self.config
        s0, s1 = Stem(cfg, name="stem")(wave_BxS, train)
        weights = {kind: cell_weights(arch, kind) for kind in ("normal", "reduce")}
        for plan in cells(cfg):
            op_weights_ExO, edge_weights_E = weights["reduce" if plan.reduction else "normal"]
            s0, s1 = s1, SearchCell(plan, cfg.primitives, cfg.partial_k)(s0, s1, op_weights_ExO, edge_weights_E,
                                                                         train)
        cos_BxK, _ = head(cfg)(s1)
        return cos_BxK


def init_supernet(seed: int, config: ModelConfig) -> tuple[dict, dict]:
    """(variables with params and batch_stats, architecture parameters α/β, 1e-3·N(0, 1))."""
    arch = init_arch(jax.random.key(seed), len(config.primitives))
    return init_raw_variables(SearchNetwork(config), seed, config, arch, train=False), arch
