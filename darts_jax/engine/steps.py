"""What every task's step shares: the global loss, the optimiser step, and the step's metrics.

Task steps (darts_jax.tasks) are pure functions for one device, written with these helpers; every sum
over the batch goes through `collectives`, so under `darts_jax.engine.parallel` a step on N devices
computes what one device would on the whole batch.
"""
from __future__ import annotations

import chex
import optax
from jax import lax

from darts_jax.engine import collectives
from darts_jax.engine.losses import weighted_nll_terms
from darts_jax.engine.optim import apply_updates


def weighted_loss(logits_BxK, labels_B, class_weights):
    """The class-weighted cross-entropy of the global batch, as this device's share of it."""
    chex.assert_rank(logits_BxK, 2)
    chex.assert_equal_shape_prefix((logits_BxK, labels_B), 1)
    numerator, denominator = weighted_nll_terms(logits_BxK, labels_B, class_weights)
    # The denominator depends on labels only; summing it outside the gradient keeps psum out of autodiff.
    return numerator / lax.stop_gradient(collectives.global_sum(denominator))


def descend(tx, grads, opt_state, params, lr):
    """Global gradient, optimiser update, the step of size `lr`, and the gradient's global norm."""
    grads = collectives.global_sum(grads)
    updates, opt_state = tx.update(grads, opt_state, params)
    return apply_updates(params, updates, lr), opt_state, optax.tree.norm(grads)


def classification_metrics(loss, logits_BxK, labels_B, grad_norm) -> dict:
    correct = (logits_BxK.argmax(-1) == labels_B).sum()
    return {"loss": collectives.global_sum(loss), "grad_norm": grad_norm,
            "accuracy": collectives.global_sum(correct) / collectives.global_sum(labels_B.shape[0])}

