"""Architecture relaxations: how architecture logits become the weights that mix candidate ops and edges.

A relaxation maps (key, logits_ExK, temperature) to weights_ExK; the key and temperature let sampled
relaxations share the signature of the deterministic softmax of DARTS. `softmax_weights` is DARTS';
`gumbel.sample_arch_weights` adds Fair DARTS' sigmoid and the Gumbel samplers (SNAS, GDAS, M-sample and
Rao-Blackwellised straight-through, and the public STGS-BMNAS code's degenerate one), `SamplerConfig` the
setting a search records, and `temperature_schedule` τ over the epochs. Edge weights (PC-DARTS' β) are
normalised within each node's incoming edges by `edge_weights`, the one definition used by supernets,
genotype derivation and reports. `remedies` holds the collapse remedies that act through the relaxation:
β-DARTS' and Fair DARTS' loss terms, DARTS-' auxiliary skip, and the op strengths derivation reads.
"""
from darts_jax.relaxations.gumbel import (
    DETERMINISTIC_MODES,
    MODES,
    PRESETS,
    SamplerConfig,
    sample_arch_weights,
    temperature_schedule,
)
from darts_jax.relaxations.remedies import (
    auxiliary_skip,
    auxiliary_skip_weight,
    beta_decay,
    derivation_weights,
    sigmoid_np,
    zero_one_loss,
)
from darts_jax.relaxations.softmax import edge_weights, softmax_entropy, softmax_np, softmax_weights

__all__ = ["DETERMINISTIC_MODES", "MODES", "PRESETS", "SamplerConfig", "auxiliary_skip", "auxiliary_skip_weight",
           "beta_decay", "derivation_weights", "edge_weights", "sample_arch_weights", "sigmoid_np",
           "softmax_entropy", "softmax_np", "softmax_weights", "temperature_schedule", "zero_one_loss"]
