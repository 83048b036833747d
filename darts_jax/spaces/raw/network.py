"""The Raw PC-DARTS network trained from scratch (spec §4, §5.3), built from a genotype.

Ops use full channels and BN affine=True; the cell preprocessing keeps BN affine=False, as the
authors' code does. Drop path (0 in the authors' training) applies to every op but the identity,
pools included. A learnable sinc is refused: a trained network takes its band edges frozen from a
search run (config.sinc_from).
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp

from darts_jax.nn.layers import drop_path
from darts_jax.spaces.pcdarts2d.genotype import Genotype
from darts_jax.spaces.raw.config import ModelConfig
from darts_jax.spaces.raw.operations import Op, Preprocess, max_pool
from darts_jax.spaces.raw.skeleton import CellPlan, Stem, cells, head, init_raw_variables


class DerivedCell(nn.Module):
    plan: CellPlan
    ops: tuple[tuple[str, int], ...]
    concat: tuple[int, ...]

    @nn.compact
    def __call__(self, s0, s1, train: bool, drop_prob):
        channels = self.plan.channels
        states = [Preprocess(channels, halve=True)(s0, train), Preprocess(channels, halve=False)(s1, train)]
        for node in range(len(self.ops) // 2):
            total = 0.0
            for name, source in self.ops[2 * node: 2 * node + 2]:
                h = Op(name, channels)(states[source], train)
                if train and drop_prob is not None and name != "skip_connect":
                    h = drop_path(self.make_rng("dropout"), h, drop_prob)
                total = total + h
            states.append(total)
        return max_pool(jnp.concatenate([states[i] for i in self.concat], axis=-1), 2)


class DerivedNetwork(nn.Module):
    """Waveforms (B, S) to (cos θ (B, 2), embedding (B, embedding_dim)).

    `drop_prob` (may be traced) enables drop path in training with a 'dropout' RNG; sinc masking
    (config.mask) draws from the 'mask' RNG.
    """
    config: ModelConfig
    genotype: Genotype

    def __post_init__(self):
        if self.config.learnable_sinc:
            raise ValueError("learnable_sinc: a trained network's sinc is frozen; learn the band edges in a "
                             "search (--learnable-sinc) and train with --sinc-from <that search's workdir>")
        super().__post_init__()

    @nn.compact
    def __call__(self, wave_BxS, train: bool, drop_prob=None):
        cfg = self.config
        s0, s1 = Stem(cfg, name="stem")(wave_BxS, train)
        for plan in cells(cfg):
            if plan.reduction:
                ops, concat = self.genotype.reduce, self.genotype.reduce_concat
            else:
                ops, concat = self.genotype.normal, self.genotype.normal_concat
            s0, s1 = s1, DerivedCell(plan, ops, concat)(s0, s1, train, drop_prob)
        return head(cfg)(s1)


def init_network(seed: int, config: ModelConfig, genotype: Genotype) -> dict:
    """Variables (params, batch_stats) with the authors' initialisation."""
    return init_raw_variables(DerivedNetwork(config, genotype), seed, config, train=False)
