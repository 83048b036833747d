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

from darts_jax.config import ModelConfig
from darts_jax.genotype import ARCH_KEYS, NODES, NUM_MIXED_EDGES, node_edge_rows
from darts_jax.layers import BatchNorm, channel_shuffle, init_variables, max_pool_2x2_ceil
from darts_jax.operations import POOLS, ConvOp, FactorizedReduce, ReLUConvBN, conv_primitive
from darts_jax.skeleton import CellPlan, Head, Stems, cell_plan, input_features

NUM_NODES = NODES
NUM_EDGES = NUM_MIXED_EDGES
# Node i's incoming edges are rows EDGE_STARTS[i] + source, for sources 0 .. i + 1.
EDGE_STARTS = tuple(node_edge_rows(node).start for node in range(NUM_NODES))
STEM_MULTIPLIER = 3


def init_arch(key, num_ops: int) -> dict:
    """α (14 x ops) and β (14) for normal and reduction cells, all 1e-3·N(0, 1)."""
    shapes = {"alphas_normal": (NUM_EDGES, num_ops), "alphas_reduce": (NUM_EDGES, num_ops),
              "betas_normal": (NUM_EDGES,), "betas_reduce": (NUM_EDGES,)}
    keys = jax.random.split(key, len(ARCH_KEYS))
    return {name: 1e-3 * jax.random.normal(k, shapes[name]) for name, k in zip(ARCH_KEYS, keys)}


def edge_softmax(betas_E):
    """β normalised within each node's incoming edges."""
    bounds = EDGE_STARTS + (NUM_EDGES,)
    return jnp.concatenate([jax.nn.softmax(betas_E[a:b]) for a, b in zip(bounds, bounds[1:])])


def cell_weights(arch: dict, kind: str):
    """(op weights 14 x ops, edge weights 14) of the 'normal' or 'reduce' cell."""
    return jax.nn.softmax(arch[f"alphas_{kind}"], axis=-1), edge_softmax(arch[f"betas_{kind}"])


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
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x, op_weights_NxO, train: bool):
        partial = x[..., :self.features]
        mixed = 0.0
        for o, name in enumerate(self.primitives):
            if name == "none":
                continue
            if name in POOLS:
                y = BatchNorm(False, self.axis_name)(POOLS[name](partial, self.stride), train)[..., None, :]
            elif name == "skip_connect" and self.stride == 1:
                y = partial[..., None, :]
            else:
                if name == "skip_connect":
                    op = FactorizedReduce(self.features, False, self.edges, self.axis_name)
                else:
                    family, kernel = conv_primitive(name)
                    op = ConvOp(family, kernel, self.features, self.stride, False, self.edges, self.depthwise,
                                self.axis_name)
                y = op(partial, train)
                y = y.reshape(*y.shape[:-1], self.edges, self.features)
            mixed = mixed + op_weights_NxO[:, o, None] * y
        if self.partial_k == 1:
            return mixed, None
        bypass = x[..., self.features:]
        return mixed, bypass if self.stride == 1 else max_pool_2x2_ceil(bypass)


class SearchCell(nn.Module):
    plan: CellPlan
    primitives: Sequence[str]
    partial_k: int
    depthwise: str = "auto"
    axis_name: str | None = None

    @nn.compact
    def __call__(self, s0, s1, op_weights_ExO, edge_weights_E, train: bool):
        channels, k = self.plan.channels, self.partial_k
        if self.plan.reduction_prev:
            s0 = FactorizedReduce(channels, False, axis_name=self.axis_name)(s0, train)
        else:
            s0 = ReLUConvBN(channels, False, self.axis_name)(s0, train)
        states = [s0, ReLUConvBN(channels, False, self.axis_name)(s1, train)]
        op_sums, bypass_sums = [0.0] * NUM_NODES, [0.0] * NUM_NODES
        # Sources in order: once source i + 1 is processed, node i has all its inputs.
        for source in range(NUM_NODES + 1):
            nodes = range(max(source - 1, 0), NUM_NODES)
            edges = [EDGE_STARTS[node] + source for node in nodes]
            stride = 2 if self.plan.reduction and source < 2 else 1
            mixed, bypass = MixedOpGroup(self.primitives, channels // k, stride, len(edges), k, self.depthwise,
                                         self.axis_name)(states[source], op_weights_ExO[np.array(edges)], train)
            for e, (node, edge) in enumerate(zip(nodes, edges)):
                op_sums[node] = op_sums[node] + edge_weights_E[edge] * mixed[..., e, :]
                if bypass is not None:
                    bypass_sums[node] = bypass_sums[node] + edge_weights_E[edge] * bypass
            if source >= 1:
                node = source - 1
                if k == 1:
                    states.append(op_sums[node])
                else:
                    states.append(channel_shuffle(jnp.concatenate([op_sums[node], bypass_sums[node]], -1), k))
        return jnp.concatenate(states[2:], axis=-1)


class SearchNetwork(nn.Module):
    """Waveforms (B, S) and architecture parameters to class logits (B, classes)."""
    config: ModelConfig
    axis_name: str | None = None

    @nn.compact
    def __call__(self, wave_BxS, arch: dict, train: bool, mask: bool = False):
        cfg = self.config
        x = input_features(self, cfg.frontend, wave_BxS, train, mask)
        s0, s1 = Stems(STEM_MULTIPLIER * cfg.init_channels, self.axis_name)(x, train)
        weights = {kind: cell_weights(arch, kind) for kind in ("normal", "reduce")}
        for plan in cell_plan(cfg.layers, cfg.init_channels):
            op_weights, edge_weights = weights["reduce" if plan.reduction else "normal"]
            cell = SearchCell(plan, cfg.primitives, cfg.partial_k, cfg.depthwise, self.axis_name)
            s0, s1 = s1, cell(s0, s1, op_weights, edge_weights, train)
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


def count_params(tree) -> int:
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))


def init_wave():
    return jnp.zeros((1, 2048), jnp.float32)
