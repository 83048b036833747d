"""The derived fusion network (spec §2.7): reshape layers for the genotype's taps only; each step feeds its
two taps (x, y) to a fusion node whose inner steps apply their chosen op to their chosen two states, and
which ends as in search (`NodeOutput`: one aggregation in both phases); the classifier of the supernet."""
from __future__ import annotations

import flax.linen as nn
import jax

from darts_jax.spaces.fusion.config import FusionConfig
from darts_jax.spaces.fusion.genotype import FusionGenotype
from darts_jax.spaces.fusion.layers import Classifier, FeatureReshape, FusionOp, NodeOutput, split_taps
from darts_jax.spaces.fusion.supernet import CELL_OUTPUTS, example_inputs


class FusionNetwork(nn.Module):
    config: FusionConfig
    genotype: FusionGenotype

    @nn.compact
    def __call__(self, packed_BxLxC, train: bool, drop_prob=0.0):
        # drop_prob (the tasks' drop path) has no counterpart here: the fusion network regularises by dropout.
        del drop_prob
        config = self.config
        features = dict(zip(config.taps, split_taps(packed_BxLxC, config.tap_channels)))
        reshaped = {tap: FeatureReshape(config.channels, config.dropout, name=f"reshape_{tap}")(features[tap], train)
                    for tap in self.genotype.taps_used}
        outputs = []
        for i, step in enumerate(self.genotype.steps):
            x, y = (reshaped[tap] for tap in step.taps)
            states = [x, y]
            for t, inner in enumerate(step.inner):
                a, b = (states[p] for p in inner.inputs)
                states.append(FusionOp(inner.op, config.dropout, name=f"node{i}_step{t}_{inner.op}")(a, b, train))
            outputs.append(NodeOutput(config.aggregation, config.dropout, name=f"node{i}_out")(x, states[2:], train))
        return Classifier(config.num_classes)(outputs[-CELL_OUTPUTS:])


def init_network(seed: int, config: FusionConfig, genotype: FusionGenotype) -> dict:
    variables = FusionNetwork(config, genotype).init({"params": jax.random.key(seed)}, example_inputs(config),
                                                     train=False)
    return {"params": variables["params"], "batch_stats": variables["batch_stats"]}
