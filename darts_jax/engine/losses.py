"""Class-weighted cross-entropy, reduced as PyTorch does: Σ w_y·nll / Σ w_y.

It returns numerator and denominator separately: a data-parallel step sums both over devices, so the
loss of a split batch equals the loss of the whole batch, whatever the class mix on each device.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def weighted_nll_terms(logits_BxK, labels_B, class_weights, valid_B=None):
    """(Σ_i w_{y_i}·nll_i, Σ_i w_{y_i}) over the valid examples."""
    nll_B = -jnp.take_along_axis(jax.nn.log_softmax(logits_BxK), labels_B[:, None], axis=-1)[:, 0]
    weights_B = jnp.asarray(class_weights, logits_BxK.dtype)[labels_B]
    if valid_B is not None:
        weights_B = weights_B * valid_B
    return (weights_B * nll_B).sum(), weights_B.sum()


def weighted_cross_entropy(logits_BxK, labels_B, class_weights, valid_B=None):
    numerator, denominator = weighted_nll_terms(logits_BxK, labels_B, class_weights, valid_B)
    return numerator / denominator
