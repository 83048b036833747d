"""Pure step functions for one device; `darts_jax.parallel` wraps them with pmap in one place.

With `axis_name` set, every sum over the batch (loss, gradients, BatchNorm statistics) is taken over
the global batch, so a step on N devices computes what one device would on the whole batch.
A search step is `arch_step` (on an architecture-half batch) followed by `weight_step` (on a
weight-half batch, with the updated α/β); they are compiled separately, which halves compile time.
"""
from __future__ import annotations

import jax
import optax
from jax import lax

from darts_jax.config import ModelConfig, SearchConfig, TrainConfig
from darts_jax.genotype import Genotype
from darts_jax.losses import weighted_nll_terms
from darts_jax.network import DerivedNetwork
from darts_jax.optim import apply_updates
from darts_jax.search_space import SearchNetwork
from darts_jax.state import SearchState, TrainState, arch_optimizer, step_key, weight_optimizer

MASK_ARCH, MASK_WEIGHTS, DROPOUT, MASK_UNROLLED = range(4)


def _global_sum(x, axis_name):
    return x if axis_name is None else lax.psum(x, axis_name)


def _weighted_loss(logits, batch_stats, batch, class_weights, axis_name):
    numerator, denominator = weighted_nll_terms(logits, batch["label"], class_weights)
    # The denominator depends on labels only; summing it outside the gradient keeps psum out of autodiff.
    loss = numerator / lax.stop_gradient(_global_sum(denominator, axis_name))
    return loss, (batch_stats, logits)


def _supernet_loss(config: SearchConfig, axis_name, params, batch_stats, arch, batch, mask_key):
    """Loss of the supernet in train mode and its updated BatchNorm statistics."""
    net = SearchNetwork(config.model, axis_name)
    logits, updates = net.apply({"params": params, "batch_stats": batch_stats}, batch["wave"], arch, train=True,
                                mask=config.mask, mutable=["batch_stats"], rngs={"mask": mask_key})
    return _weighted_loss(logits, updates["batch_stats"], batch, config.class_weights, axis_name)


def _descend(tx, grads, opt_state, params, lr, axis_name):
    """Global gradient, optimiser update, the step of size `lr`, and the gradient's global norm."""
    grads = _global_sum(grads, axis_name)
    updates, opt_state = tx.update(grads, opt_state, params)
    return apply_updates(params, updates, lr), opt_state, optax.tree.norm(grads)


def _metrics(loss, logits, labels, grad_norm, axis_name):
    correct = (logits.argmax(-1) == labels).sum()
    count = labels.shape[0]
    return {"loss": _global_sum(loss, axis_name), "grad_norm": grad_norm,
            "accuracy": _global_sum(correct, axis_name) / _global_sum(count, axis_name)}


def arch_step(state: SearchState, arch_batch, weight_batch, lr, *, config: SearchConfig, axis_name=None):
    """One α/β update on the architecture half, first order or (config.unrolled) second order.

    The second-order gradient differentiates exactly, with autodiff, through one virtual weight step
    w' = w - lr·(∇w L_train + wd·w), where DARTS approximates it with finite differences.
    `weight_batch` is only read when unrolled.
    """
    mask_key = step_key(state, MASK_ARCH)

    def val_loss(arch, params):
        return _supernet_loss(config, axis_name, params, state.batch_stats, arch, arch_batch, mask_key)

    if config.unrolled:
        def train_loss(params, arch):
            return _supernet_loss(config, axis_name, params, state.batch_stats, arch, weight_batch,
                                  step_key(state, MASK_UNROLLED))[0]

        def unrolled_loss(arch):
            grads_w = _global_sum(jax.grad(train_loss)(state.params, arch), axis_name)
            virtual = jax.tree.map(lambda w, g: w - lr * (g + config.weight_decay * w), state.params, grads_w)
            return val_loss(arch, virtual)

        loss_fn = unrolled_loss
    else:
        def loss_fn(arch):
            return val_loss(arch, state.params)

    (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.arch)
    arch, opt_a, grad_norm = _descend(arch_optimizer(config), grads, state.opt_a, state.arch, config.arch_lr,
                                      axis_name)
    # PyTorch runs the α step in train mode, so its BatchNorm statistics updates are kept.
    new_state = state.replace(arch=arch, opt_a=opt_a, batch_stats=batch_stats)
    return new_state, _metrics(loss, logits, arch_batch["label"], grad_norm, axis_name)


def weight_step(state: SearchState, batch, lr, *, config: SearchConfig, axis_name=None):
    """One weight update of the supernet with the current α/β; advances the step."""
    def loss_fn(params):
        return _supernet_loss(config, axis_name, params, state.batch_stats, state.arch, batch,
                              step_key(state, MASK_WEIGHTS))

    (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    params, opt_w, grad_norm = _descend(weight_optimizer(config), grads, state.opt_w, state.params, lr, axis_name)
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_w=opt_w)
    return new_state, _metrics(loss, logits, batch["label"], grad_norm, axis_name)


def search_step(state, weight_batch, arch_batch, lr, update_arch: bool, *, config: SearchConfig, axis_name=None):
    """The authors' order: α/β step (skipped in warm-up), then the weight step with the new α/β."""
    metrics = {}
    if update_arch:
        state, arch_metrics = arch_step(state, arch_batch, weight_batch, lr, config=config, axis_name=axis_name)
        metrics = {f"arch_{k}": v for k, v in arch_metrics.items()}
    state, weight_metrics = weight_step(state, weight_batch, lr, config=config, axis_name=axis_name)
    return state, {**metrics, **weight_metrics}


def train_step(state: TrainState, batch, lr, drop_prob, *, config: TrainConfig, genotype: Genotype,
               axis_name=None):
    """One weight update of a derived network, drop path at `drop_prob` (a scalar, so no recompiles)."""
    net = DerivedNetwork(config.model, genotype, axis_name)
    rngs = {"mask": step_key(state, MASK_WEIGHTS), "dropout": step_key(state, DROPOUT)}

    def loss_fn(params):
        (logits, _), updates = net.apply({"params": params, "batch_stats": state.batch_stats}, batch["wave"],
                                         train=True, mask=config.mask, drop_prob=drop_prob,
                                         mutable=["batch_stats"], rngs=rngs)
        return _weighted_loss(logits, updates["batch_stats"], batch, config.class_weights, axis_name)

    (loss, (batch_stats, logits)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    params, opt, grad_norm = _descend(weight_optimizer(config), grads, state.opt, state.params, lr, axis_name)
    new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt=opt)
    return new_state, _metrics(loss, logits, batch["label"], grad_norm, axis_name)


def eval_step(params, batch_stats, arch, batch, *, model: ModelConfig, genotype: Genotype | None):
    """Scores in eval mode (running BN statistics, no masking, no drop path).

    `score` is the bona fide logit, the authors' score (spec §5.4); `score_diff` is logit1 - logit0,
    which is monotonic in the posterior. The supernet is scored when `genotype` is None.
    """
    variables = {"params": params, "batch_stats": batch_stats}
    if genotype is None:
        logits = SearchNetwork(model).apply(variables, batch["wave"], arch, train=False)
    else:
        logits, _ = DerivedNetwork(model, genotype).apply(variables, batch["wave"], train=False)
    return {"score": logits[:, 1], "score_diff": logits[:, 1] - logits[:, 0], "prediction": logits.argmax(-1)}
