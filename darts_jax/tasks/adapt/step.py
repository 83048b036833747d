"""The pure adaptation step, the teacher's prototypes, and the eval forward.

A detector reaches the task as a `Backbone` record of functions (the tasks never import a network):
`forward(variables, inputs, train, key) -> ((logits_BxK, features_BxD), batch_stats)`, where
`features_BxD` is the representation the prototypes average (the backbone's `features(x)` pooled,
before its `head`), and `batch_stats` is the new BatchNorm statistics in training, the old ones in eval.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax

from darts_jax.engine import collectives, parallel
from darts_jax.engine.state import step_key
from darts_jax.engine.steps import classification_metrics, descend
from darts_jax.tasks.adapt import losses
from darts_jax.tasks.adapt.config import AdaptLoss
from darts_jax.tasks.arrays import fixed_batches

# Salts of the per-step keys.
CUTMIX, FORWARD = range(2)


@dataclasses.dataclass(frozen=True)
class Backbone:
    forward: Callable
    head_keys: tuple[str, ...]  # top-level parameter names of the classifier head (T-GD pulls them to 0)


def sgd(momentum: float):
    """torch.optim.SGD(momentum=m) without the learning rate (applied by the engine): v = m·v + g."""
    return optax.trace(decay=momentum)


def adapt_step(state, batch, lr, weights, teacher, prototypes, *, backbone: Backbone, loss: AdaptLoss,
               momentum: float, box_axes: int):
    """One student update on a target batch: L = Σ weights[t]·term_t (terms in darts_jax.tasks.adapt.losses).

    `teacher`: the frozen teacher's variables (eval mode, no gradient); `prototypes`: its (C, N, D) cell
    means and (C, N) counts on the target training data. `weights` are values, so every method with the
    same `loss` structure (prototype, rel_forward) shares one compiled step. On several devices the
    cells are taken per device and the terms averaged over devices.
    """
    labels_B = batch["label"]
    inputs, mixed_B = losses.cutmix(step_key(state, CUTMIX), batch["inputs"], labels_B, loss.cutmix_prob, box_axes)
    key = step_key(state, FORWARD)
    teacher = lax.stop_gradient(teacher)
    (teacher_logits, _), _ = backbone.forward(teacher, inputs, False, key)

    def loss_fn(params):
        variables = {"params": params, "batch_stats": state.batch_stats}
        (logits, features), batch_stats = backbone.forward(variables, inputs, True, key)
        if loss.rel_forward == "eval_pass":
            (rel_logits, features), _ = backbone.forward(variables, inputs, False, key)
        else:
            rel_logits = logits
        phi = losses.representation(features, loss.prototype)
        terms = {"ce": losses.cross_entropy(logits, labels_B),
                 "kd": losses.kd_term(logits, teacher_logits, labels_B, loss.temperature, loss.alpha),
                 "rel": losses.rel_term(rel_logits, labels_B, phi, prototypes["means"], prototypes["counts"]),
                 "l2sp": losses.l2sp_term(params, teacher["params"], backbone.head_keys, teacher_logits, labels_B)}
        total = sum(weights[name] * terms[name] for name in terms)
        # `descend` sums gradients over devices: each device's share of the mean.
        return total / collectives.device_count(), (batch_stats, logits, terms)

    (share, (batch_stats, logits, terms)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    params, opt, grad_norm = descend(sgd(momentum), grads, state.opt, state.params, lr)
    metrics = classification_metrics(share, logits, labels_B, grad_norm)
    metrics.update({f"loss_{name}": collectives.global_mean(value) for name, value in terms.items()})
    metrics["cutmix_rows"] = collectives.global_sum(mixed_B.sum())
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt=opt), metrics


def compile_adapt_step(backbone: Backbone, loss: AdaptLoss, momentum: float, box_axes: int, devices) -> Callable:
    """(state, batch, lr, weights, teacher, prototypes) -> (state, metrics) over `devices`.

    The term weights reach the step as values, so methods that differ only in them share one compiled
    step (the protocol runs six methods per teacher): the cache keys on the loss without its weights.
    """
    structure = dataclasses.replace(loss, ce=0.0, kd=0.0, rel=0.0, l2sp=0.0)
    return _compiled_adapt_step(backbone, structure, momentum, box_axes, tuple(devices))


@functools.lru_cache(maxsize=8)
def _compiled_adapt_step(backbone, structure, momentum, box_axes, devices):
    step = parallel.bind(adapt_step, backbone=backbone, loss=structure, momentum=momentum, box_axes=box_axes)
    return parallel.pmap(step, list(devices), (0, 0, None, None, 0, 0))


def eval_forward(variables, inputs, *, backbone: Backbone):
    (logits, features), _ = backbone.forward(variables, inputs, False, jax.random.key(0))
    return {"logits": logits, "features": features}


def compile_eval_forward(backbone: Backbone, devices) -> Callable:
    return _compiled_eval_forward(backbone, tuple(devices))


@functools.lru_cache(maxsize=8)
def _compiled_eval_forward(backbone, devices):
    return parallel.pmap(parallel.bind(eval_forward, backbone=backbone), list(devices), (0, 0), donate_state=False)


def predict(forward, variables, inputs: np.ndarray, batch_size: int, devices) -> dict:
    """Eval-mode logits (N, K) and features (N, D) of every row of `inputs` (the last batch padded)."""
    replicated = parallel.replicate(variables, devices)
    outputs = {"logits": [], "features": []}
    for batch, count in fixed_batches({"x": inputs}, batch_size):
        out = jax.device_get(forward(replicated, parallel.shard_batch(batch, len(devices))["x"]))
        for name in outputs:
            outputs[name].append(out[name].reshape(batch_size, -1)[:count])
    return {name: np.concatenate(parts) for name, parts in outputs.items()}


def prototypes_from_outputs(logits_NxK, labels_N, features_NxD, prototype: str) -> dict:
    """The teacher's cell means μᵀ (C, N, D) and counts (C, N) from its eval outputs on the target
    training data: correct samples only, by the teacher's confidence; empty cells have count 0."""
    phi = losses.representation(jnp.asarray(features_NxD), prototype)
    sums, counts = losses.cell_sums(jnp.asarray(logits_NxK), jnp.asarray(labels_N), phi)
    return {"means": losses.cell_means(sums, counts), "counts": counts}
