"""The PC-DARTS search supernet (spec §2): partial-channel mixed ops, cells and the network.

Architecture parameters never live in the Flax params: they are a pytree of their own, passed to
`apply` as an argument, so weights and architecture keep separate optimiser states.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.engine.state import count_params
from darts_jax.nn.layers import (
    BatchNorm,
    channel_shuffle,
    init_variables,
    max_pool_2x2_ceil,
)
from darts_jax.relaxations import edge_weights, softmax_weights
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import (
    ARCH_KEYS,
    NODE_BOUNDS,
    NODES,
    NUM_MIXED_EDGES,
)
from darts_jax.spaces.pcdarts2d.operations import (
    POOLS,
    ConvOp,
    FactorizedReduce,
    ReLUConvBN,
    conv_primitive,
)
from darts_jax.spaces.pcdarts2d.skeleton import (
    CellPlan,
    Head,
    Stems,
    cell_plan,
    init_wave,
    input_features,
)

NUM_NODES = NODES
NUM_EDGES = NUM_MIXED_EDGES
# Node i's incoming edges are rows EDGE_STARTS[i] + source, for sources 0 .. i + 1.
EDGE_STARTS = NODE_BOUNDS[:-1]
STEM_MULTIPLIER = 3


def init_arch(key, num_ops: int) -> dict:
    """α (14 x ops) and β (14) for normal and reduction cells, all 1e-3·N(0, 1)."""
    shapes = {"alphas_normal": (NUM_EDGES, num_ops), "alphas_reduce": (NUM_EDGES, num_ops),
              "betas_normal": (NUM_EDGES,), "betas_reduce": (NUM_EDGES,)}
    keys = jax.random.split(key, len(ARCH_KEYS))
    return {name: 1e-3 * jax.random.normal(k, shapes[name]) for name, k in zip(ARCH_KEYS, keys)}


def cell_weights(arch: dict, kind: str):
    """(op weights 14 x ops, edge weights 14) of the 'normal' or 'reduce' cell."""
    return (softmax_weights(None, arch[f"alphas_{kind}"]),
            edge_weights(arch[f"betas_{kind}"], NODE_BOUNDS))


class MixedOpGroup(nn.Module):
    """The mixed ops of all edges leaving one state, on its first C/K channels.

    Returns the weighted op sums (B, H, W, edges, C/K) and the bypassed channels (None when K = 1).
    Pools, identity and their BN(affine=False) give the same output on every edge, so they run once.
    """
    primitives: Sequence[str]
    features: int
    stride: int
    edges: int
    partial_k: int
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, x, op_weights_NxO, train: bool):
        partial = x[..., :self.features]
        mixed = 0.0
        for o, name in enumerate(self.primitives):
            if name == "none":
                continue
            if name in POOLS:
                y = BatchNorm(False)(POOLS[name](partial, self.stride), train)[..., None, :]
            elif name == "skip_connect" and self.stride == 1:
                y = partial[..., None, :]
            else:
                if name == "skip_connect":
                    op = FactorizedReduce(self.features, False, self.edges)
                else:
                    family, kernel = conv_primitive(name)
                    op = ConvOp(family, kernel, self.features, self.stride, False, self.edges, self.depthwise)
                y = op(partial, train)
                y = y.reshape(*y.shape[:-1], self.edges, self.features)
            mixed = mixed + op_weights_NxO[:, o, None] * y
        if self.partial_k == 1:
            return mixed, None
        bypass = x[..., self.features:]
        return mixed, bypass if self.stride == 1 else max_pool_2x2_ceil(bypass)


def mix_cell(states: list, group, edge_weights_E, partial_k: int) -> list:
    """The 4 intermediate nodes of a PC-DARTS search cell from its 2 input `states`, appended to them.

    `group(source, edges)` runs the mixed ops of every edge leaving state `source` (rows `edges` of α/β)
    and returns their weighted op sums (..., edges, C/K) and the bypassed channels (None when K = 1).
    Node i sums its incoming edges weighted by β, then (K > 1) shuffles the op sums with the bypass.
    Shared by the 2-D space and the raw 1-D space, whose cells differ only in their ops.
    """
    op_sums, bypass_sums = [0.0] * NUM_NODES, [0.0] * NUM_NODES
    # Sources in order: once source i + 1 is processed, node i has all its inputs.
    for source in range(NUM_NODES + 1):
        nodes = range(max(source - 1, 0), NUM_NODES)
        edges = [EDGE_STARTS[node] + source for node in nodes]
        mixed, bypass = group(source, edges)
        for e, (node, edge) in enumerate(zip(nodes, edges)):
            op_sums[node] = op_sums[node] + edge_weights_E[edge] * mixed[..., e, :]
            if bypass is not None:
                bypass_sums[node] = bypass_sums[node] + edge_weights_E[edge] * bypass
        if source >= 1:
            node = source - 1
            states.append(op_sums[node] if partial_k == 1 else
                          channel_shuffle(jnp.concatenate([op_sums[node], bypass_sums[node]], -1), partial_k))
    return states[2:]


class SearchCell(nn.Module):
    plan: CellPlan
    primitives: Sequence[str]
    partial_k: int
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, s0, s1, op_weights_ExO, edge_weights_E, train: bool):
        channels, k = self.plan.channels, self.partial_k
        if self.plan.reduction_prev:
            s0 = FactorizedReduce(channels, False)(s0, train)
        else:
            s0 = ReLUConvBN(channels, False)(s0, train)
        states = [s0, ReLUConvBN(channels, False)(s1, train)]

        def group(source, edges):
            stride = 2 if self.plan.reduction and source < 2 else 1
            return MixedOpGroup(self.primitives, channels // k, stride, len(edges), k, self.depthwise)(
                states[source], op_weights_ExO[np.array(edges)], train)

        return jnp.concatenate(mix_cell(states, group, edge_weights_E, k), axis=-1)


class SearchNetwork(nn.Module):
    """Waveforms (B, S) and architecture parameters to class logits (B, classes)."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, arch: dict, train: bool):
        cfg = self.config
        x = input_features(self, cfg.frontend, wave_BxS, train, cfg.mask)
        s0, s1 = Stems(STEM_MULTIPLIER * cfg.init_channels)(x, train)
        weights = {kind: cell_weights(arch, kind) for kind in ("normal", "reduce")}
        for plan in cell_plan(cfg.layers, cfg.init_channels):
            op_weights_ExO, edge_weights_E = weights["reduce" if plan.reduction else "normal"]
            cell = SearchCell(plan, cfg.primitives, cfg.partial_k, cfg.depthwise)
            s0, s1 = s1, cell(s0, s1, op_weights_ExO, edge_weights_E, train)
        logits, _ = Head(cfg.num_classes)(s1)
        return logits


def init_supernet(seed: int, config: ModelConfig) -> tuple[dict, dict]:
    """(variables with params and batch_stats, architecture parameters), on a short dummy input:
    weight shapes do not depend on the audio length."""
    arch = init_arch(jax.random.key(seed), len(config.primitives))
    return init_variables(SearchNetwork(config), seed, init_wave(), arch, train=False), arch


def count_supernet_params(config: ModelConfig) -> tuple[int, int]:
    """(trainable weights, architecture values), counted from shapes without computing anything."""
    arch = jax.eval_shape(lambda: init_arch(jax.random.key(0), len(config.primitives)))
    variables = jax.eval_shape(lambda a: SearchNetwork(config).init(jax.random.key(0), init_wave(), a, False), arch)
    return count_params(variables["params"]), count_params(arch)
