"""Collapse remedies that act on the relaxation: terms of the architecture loss, the auxiliary skip of
DARTS-, and how a relaxation's op weights rank ops when a genotype is derived. Each is off by default.

- β-DARTS (Ye et al., CVPR 2022): `beta_decay`, the mean logsumexp of every edge's op logits, added to
  the architecture loss, keeps softmax(α) from saturating early.
- Fair DARTS (Chu et al., ECCV 2020): the `sigmoid` relaxation (relaxations.gumbel) lets ops stop
  competing; `zero_one_loss`, -mean((σ(α) - 0.5)²) (its authors' weight is 10), pushes each σ(α)
  towards 0 or 1, so that the derived ops are the ones the supernet really used. A genotype is then
  derived from σ(α) (`derivation_weights`), not from softmax(α).
- DARTS- (Chu et al., ICLR 2021): every edge gains an auxiliary skip connection of weight β that falls
  linearly to 0 over the search (`auxiliary_skip`, `auxiliary_skip_weight`): the skip's residual path
  no longer has to be won through α, so α stops drifting to skip. It is not part of α, so derivation
  ignores it.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.relaxations.softmax import softmax_np


def beta_decay(arch) -> jax.Array:
    """β-DARTS' regulariser: the mean over every edge of logsumexp of its op logits (the 2-D leaves of
    `arch`). Added to the architecture loss it keeps softmax(α) from saturating early, against collapse."""
    rows = [jax.nn.logsumexp(leaf, axis=-1) for leaf in jax.tree.leaves(arch) if leaf.ndim == 2]
    return jnp.mean(jnp.concatenate(rows))


def zero_one_loss(arch) -> jax.Array:
    """Fair DARTS' zero-one loss: -mean((σ(α) - 0.5)²) over every op logit (the 2-D leaves of `arch`)."""
    values = jnp.concatenate([jax.nn.sigmoid(leaf).ravel() for leaf in jax.tree.leaves(arch) if leaf.ndim == 2])
    return -jnp.mean((values - 0.5) ** 2)


def sigmoid_np(logits: np.ndarray) -> np.ndarray:
    """σ in float64, for derivations and reports."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, np.float64)))


def derivation_weights(mode: str):
    """The NumPy map from op logits to the op strengths a genotype is derived from under relaxation `mode`:
    σ(α) for Fair DARTS' sigmoid; softmax(α) otherwise (DARTS, and the Gumbel samplers, as GDAS does)."""
    return sigmoid_np if mode == "sigmoid" else softmax_np


def auxiliary_skip(op_weights, skip_column: int, weight):
    """`op_weights` (..., E, K) with `weight` added to column `skip_column` on every edge: the mixed op
    then adds weight · skip(x), DARTS-' auxiliary skip (the skip op's own module, so on a reduction edge
    its factorised reduce)."""
    return op_weights + weight * jax.nn.one_hot(skip_column, op_weights.shape[-1], dtype=op_weights.dtype)


def auxiliary_skip_weight(epoch: int, epochs: int, start: float) -> float:
    """DARTS-' β at `epoch` of 0 .. epochs - 1: `start`, falling linearly to 0 at the last epoch."""
    return float(start * (1.0 - epoch / max(epochs - 1, 1)))
