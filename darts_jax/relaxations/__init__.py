"""Architecture relaxations: how architecture logits become the weights that mix candidate ops and edges.

A relaxation maps (key, logits_ExK, temperature) to weights_ExK; the key and temperature let sampled
relaxations share the signature of the deterministic softmax of DARTS. `softmax_weights` is DARTS';
`gumbel.sample_arch_weights` adds the Gumbel samplers (SNAS, GDAS, M-sample and Rao-Blackwellised
straight-through, and the public STGS-BMNAS code's degenerate one), `SamplerConfig` the setting a search
records, and `temperature_schedule` τ over the epochs. Edge weights (PC-DARTS' β) are normalised within
each node's incoming edges by `edge_weights`, the one definition used by supernets, genotype derivation
and reports. `beta_decay` is β-DARTS' regulariser of the architecture loss.
"""
from darts_jax.relaxations.gumbel import MODES, PRESETS, SamplerConfig, sample_arch_weights, temperature_schedule
from darts_jax.relaxations.softmax import beta_decay, edge_weights, softmax_entropy, softmax_np, softmax_weights

__all__ = ["MODES", "PRESETS", "SamplerConfig", "beta_decay", "edge_weights", "sample_arch_weights",
           "softmax_entropy", "softmax_np", "softmax_weights", "temperature_schedule"]
