"""The derived network trained from scratch (spec §3), built from a genotype."""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from darts_jax.engine.state import count_params
from darts_jax.nn.layers import drop_path, init_variables
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import Genotype
from darts_jax.spaces.pcdarts2d.operations import FactorizedReduce, Op, ReLUConvBN
from darts_jax.spaces.pcdarts2d.skeleton import (
    CellPlan,
    Head,
    Stems,
    cell_plan,
    init_wave,
    input_features,
)


class DerivedCell(nn.Module):
    plan: CellPlan
    ops: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]
    depthwise: str = "auto"

    @nn.compact
    def __call__(self, s0, s1, train: bool, drop_prob):
        channels = self.plan.channels
        # The authors keep the preprocessing BN without affine parameters (spec §3 quirk).
        if self.plan.reduction_prev:
            s0 = FactorizedReduce(channels, False)(s0, train)
        else:
            s0 = ReLUConvBN(channels, False)(s0, train)
        states = [s0, ReLUConvBN(channels, False)(s1, train)]
        for node in range(len(self.ops) // 2):
            total = 0.0
            for name, source in self.ops[2 * node: 2 * node + 2]:
                stride = 2 if self.plan.reduction and source < 2 else 1
                h = Op(name, channels, stride, self.depthwise)(states[source], train)
                if train and drop_prob is not None and not (name == "skip_connect" and stride == 1):
                    h = drop_path(self.make_rng("dropout"), h, drop_prob)
                total = total + h
            states.append(total)
        return jnp.concatenate([states[i] for i in self.concat], axis=-1)


class DerivedNetwork(nn.Module):
    """Waveforms (B, S) to (logits (B, classes), embedding (B, 4·C_last)).

    `drop_prob` (may be a traced scalar, so its ramp never recompiles) enables drop path in training;
    it needs a 'dropout' RNG, and frequency masking (config.mask) a 'mask' RNG.
    """
    config: ModelConfig
    genotype: Genotype

    @nn.compact
    def __call__(self, wave_BxS, train: bool, drop_prob=None):
        cfg = self.config
        x = input_features(self, cfg.frontend, wave_BxS, train, cfg.mask)
        s0, s1 = Stems(cfg.init_channels)(x, train)
        for plan in cell_plan(cfg.layers, cfg.init_channels):
            if plan.reduction:
                ops, concat = self.genotype.reduce, self.genotype.reduce_concat
            else:
                ops, concat = self.genotype.normal, self.genotype.normal_concat
            cell = DerivedCell(plan, ops, concat, cfg.depthwise)
            s0, s1 = s1, cell(s0, s1, train, drop_prob)
        return Head(cfg.num_classes)(s1)


def init_network(seed: int, config: ModelConfig, genotype: Genotype) -> dict:
    """Variables (params, batch_stats) with PyTorch's default initialisation."""
    return init_variables(DerivedNetwork(config, genotype), seed, init_wave(), train=False)


def count_network_params(config: ModelConfig, genotype: Genotype) -> int:
    shapes = jax.eval_shape(lambda: DerivedNetwork(config, genotype).init(jax.random.key(0), init_wave(), False))
    return count_params(shapes["params"])
