"""Optimisers as the authors' PyTorch code has them: Adam with coupled L2, cosine stepped per epoch.

The learning rate is applied outside the optax chain and passed to each step as a scalar, so one
compiled step serves every epoch of the schedule and the unrolled search can reuse it.
"""
from __future__ import annotations

import math

import jax
import optax


def coupled_adam(weight_decay: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8):
    """torch.optim.Adam(weight_decay=wd) without the learning rate: L2 added to the gradient, not AdamW."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_adam(b1, b2, eps))


def apply_updates(params, updates, lr):
    return jax.tree.map(lambda p, u: p - lr * u, params, updates)


def cosine_lr(epoch: int, epochs: int, lr: float, lr_min: float) -> float:
    """CosineAnnealingLR(T_max=epochs, eta_min=lr_min) after `epoch` scheduler steps."""
    return lr_min + (lr - lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2


def weight_optimizer(optim):
    """The network weights' optimiser for an `OptimConfig`."""
    return coupled_adam(optim.weight_decay)
