"""The DARTS relaxation: softmax over each edge's candidate ops, and β normalised within each node."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def softmax_weights(key, logits_ExK, temperature=1.0):
    """softmax(logits / temperature) over the ops of each edge; `key` is unused (deterministic)."""
    del key
    return jax.nn.softmax(logits_ExK / temperature, axis=-1)


def edge_weights(betas_E, node_bounds: Sequence[int]):
    """β normalised by a softmax within each node's incoming edges `betas_E[a:b]`, for consecutive
    bounds a, b of `node_bounds` (0, ..., E); on NumPy input it computes in NumPy (float64 stays float64).
    """
    if isinstance(betas_E, np.ndarray):
        parts = [softmax_np(betas_E[..., a:b]) for a, b in zip(node_bounds, node_bounds[1:])]
        return np.concatenate(parts, axis=-1)
    return jnp.concatenate([jax.nn.softmax(betas_E[..., a:b], axis=-1)
                            for a, b in zip(node_bounds, node_bounds[1:])], axis=-1)


def softmax_np(logits: np.ndarray) -> np.ndarray:
    """softmax over the last axis in NumPy, for derivations and reports in float64."""
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def softmax_entropy(logits_ExK) -> np.ndarray:
    """Entropy (nats) of softmax over each row (edge) in float64: log(K) is undecided, 0 is one op."""
    logits = np.asarray(logits_ExK, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -(np.exp(log_probs) * log_probs).sum(axis=-1)

