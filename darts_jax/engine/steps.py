"""What every task's step shares: the global loss, the optimiser step, and the step's metrics.

Task steps (darts_jax.tasks) are pure functions for one device, written with these helpers; every sum
over the batch goes through `collectives`, so under `darts_jax.engine.parallel` a step on N devices
computes what one device would on the whole batch.
"""
from __future__ import annotations

import chex
import jax
import optax
from jax import lax

from darts_jax.engine import collectives
from darts_jax.engine.optim import apply_updates


def global_loss(loss_terms, logits_BxK, labels_B, class_weights):
    """The loss of the global batch as this device's share of it, from `loss_terms` -> (numerator,
    denominator) (a space's `loss_terms`; class-weighted cross-entropy for PC-DARTS)."""
    chex.assert_rank(logits_BxK, 2)
    chex.assert_equal_shape_prefix((logits_BxK, labels_B), 1)
    numerator, denominator = loss_terms(logits_BxK, labels_B, class_weights)
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



def gradient_step(loss_fn, params, opt_state, tx, lr, labels_B):
    """One descent step on `loss_fn(params) -> (loss, (batch_stats, logits))`.

    Returns (params, opt_state, the BatchNorm statistics of the forward pass, metrics).
    """
    (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    params, opt_state, grad_norm = descend(tx, grads, opt_state, params, lr)
    return params, opt_state, batch_stats, classification_metrics(loss, logits, labels_B, grad_norm)
