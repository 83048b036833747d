"""Architecture relaxations: how architecture logits become the weights that mix candidate ops and edges.

A relaxation is `(key, logits_ExK, temperature) -> weights_ExK`; the key and temperature let sampled
relaxations (Gumbel-softmax and its kin) share the signature of the deterministic softmax of DARTS.
Edge weights (PC-DARTS' β) are normalised within each node's incoming edges by `edge_weights`,
the one definition used by supernets, genotype derivation and reports. `beta_decay` is β-DARTS'
regulariser of the architecture loss.
"""
from darts_jax.relaxations.softmax import beta_decay, edge_weights, softmax_entropy, softmax_np, softmax_weights

RELAXATIONS = {"softmax": softmax_weights}

__all__ = ["RELAXATIONS", "beta_decay", "edge_weights", "softmax_entropy", "softmax_np", "softmax_weights"]
