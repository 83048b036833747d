"""The fusion supernet (spec §2.4): which taps feed each fusion step (α over {none, skip} on 17 edges), and
inside each step's fusion node which states feed each inner step (β) and with which fusion op (γ).

Architecture values (`arch`): "alpha" (E, 2), "beta" (S, node edges, 2), "gamma" (S, inner steps, 4), all
initialised 1e-3·N(0, 1). In a sampled search (`sampler`, a `relaxations.SamplerConfig`, and `tau` given
to `apply`) their mixing weights are drawn from the 'gumbel' stream, one draw per forward pass shared by
the batch (as STGS and GDAS) or one per example; otherwise, and in evaluation, they are softmax(α).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from darts_jax.relaxations import SamplerConfig, sample_arch_weights, softmax_weights
from darts_jax.spaces.fusion.config import EDGE_PRIMITIVES, FUSION_OPS, FusionConfig
from darts_jax.spaces.fusion.layers import Classifier, FeatureReshape, FusionOp, NodeOutput, split_taps

SKIP = EDGE_PRIMITIVES.index("skip")
GUMBEL = "gumbel"  # the RNG stream the search task draws architecture samples from
CELL_OUTPUTS = 2  # the cell concatenates its last 2 steps (BM-NAS' multiplier)


def mixing_weights(key, logits_ExK, sampler: SamplerConfig | None, tau, batch: int):
    """Weights (E, K) from logits, or (B, E, K) with one draw per example; softmax without a sampler."""
    if sampler is None:
        return softmax_weights(None, logits_ExK)
    return sample_arch_weights(key, logits_ExK, tau, sampler.mode, sampler.num_samples,
                               batch_size=batch if sampler.per_example_sample else None)


def weighted(weights, row: int, column: int, state_BxLxC):
    """`state` scaled by weights[row, column]: a scalar, or one per example for (B, E, K) weights."""
    weight = weights[..., row, column]
    return (weight[:, None, None] if weight.ndim else weight) * state_BxLxC


class SearchNode(nn.Module):
    """BM-NAS' searched fusion node on (x, y): inner step t mixes its 2 + t predecessors by skip weights
    and applies the γ-weighted mixture of the fusion ops to (that mixture, that mixture)."""
    config: FusionConfig

    @nn.compact
    def __call__(self, x, y, edge_weights_Ex2, op_weights_TxK, train: bool):
        states, edge = [x, y], 0
        for t in range(self.config.node_steps):
            mixed = sum(weighted(edge_weights_Ex2, edge + j, SKIP, s) for j, s in enumerate(states))
            edge += len(states)
            ops = [FusionOp(op, self.config.dropout, name=f"step{t}_{op}")(mixed, mixed, train) for op in FUSION_OPS]
            states.append(sum(weighted(op_weights_TxK, t, k, out) for k, out in enumerate(ops)))
        return NodeOutput(self.config.aggregation, self.config.dropout)(x, states[2:], train)


class FusionSupernet(nn.Module):
    config: FusionConfig

    @nn.compact
    def __call__(self, packed_BxLxC, arch, train: bool, sampler: SamplerConfig | None = None, tau=1.0):
        config = self.config
        states = [FeatureReshape(config.channels, config.dropout, name=f"reshape_{tap}")(feature, train)
                  for tap, feature in zip(config.taps, split_taps(packed_BxLxC, config.tap_channels))]
        sampler = sampler if train else None
        draws = 1 + 2 * config.steps
        keys = jax.random.split(self.make_rng(GUMBEL), draws) if sampler is not None else [None] * draws
        batch = packed_BxLxC.shape[0]
        alpha_Ex2 = mixing_weights(keys[0], arch["alpha"], sampler, tau, batch)
        edge = 0
        for i in range(config.steps):
            step_input = sum(weighted(alpha_Ex2, edge + j, SKIP, s) for j, s in enumerate(states))
            edge += len(states)
            beta_Ex2 = mixing_weights(keys[1 + 2 * i], arch["beta"][i], sampler, tau, batch)
            gamma_TxK = mixing_weights(keys[2 + 2 * i], arch["gamma"][i], sampler, tau, batch)
            # BM-NAS feeds the node the same aggregated input twice (spec §2.4).
            states.append(SearchNode(config, name=f"node{i}")(step_input, step_input, beta_Ex2, gamma_TxK, train))
        logits, _ = Classifier(config.num_classes)(states[len(config.taps):][-CELL_OUTPUTS:])
        return logits


def init_arch(key, config: FusionConfig) -> dict:
    shapes = {"alpha": (config.num_edges, len(EDGE_PRIMITIVES)),
              "beta": (config.steps, config.node_edges, len(EDGE_PRIMITIVES)),
              "gamma": (config.steps, config.node_steps, len(FUSION_OPS))}
    keys = jax.random.split(key, len(shapes))
    return {name: 1e-3 * jax.random.normal(k, shape) for k, (name, shape) in zip(keys, shapes.items())}


def example_inputs(config: FusionConfig, batch: int = 2):
    return jnp.zeros((batch, config.length, sum(config.tap_channels)), jnp.float32)


def init_supernet(seed: int, config: FusionConfig) -> tuple[dict, dict]:
    params_key, arch_key = jax.random.split(jax.random.key(seed))
    arch = init_arch(arch_key, config)
    variables = FusionSupernet(config).init({"params": params_key}, example_inputs(config), arch, train=False)
    return {"params": variables["params"], "batch_stats": variables["batch_stats"]}, arch
