"""Pure steps of both stages: the discriminator and generator updates of the depth GAN (and the L1-only
ablation), and the live/spoof classifier update (binary CE, optionally + λ·L1 on a predicted depth map).

RECONSTRUCTION (spec related_systems §4.2): pix2pix losses, L_D = BCE(D(x, d), 1) + BCE(D(x, G(x)), 0) and
L_G = BCE(D(x, G(x)), 1) + λ_rec·‖G(x) − d‖₁, or least squares in place of BCE. D steps at `d_lr` (see
pretrain.PretrainConfig for why it is below G's).
Each network has its own optax state and BatchNorm statistics; the D step sees G(x) through
stop_gradient and keeps G as it was, the G step keeps D's parameters and statistics as they were. Batch
sums go through `collectives`, so a step over N devices computes what one device does on the whole batch.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from darts_jax.engine import collectives
from darts_jax.engine.steps import descend
from darts_jax.tasks.pseudodepth.models import PatchDiscriminator, SpoofClassifier, UNetGenerator

GAN_LOSSES = ("bce", "lsgan")


class PretrainState(struct.PyTreeNode):
    """The generator as `params`/`batch_stats` (what another run's `load_weights` reads), and the discriminator."""
    step: jax.Array
    params: Any
    batch_stats: Any
    opt_g: Any
    d_params: Any
    d_stats: Any
    opt_d: Any
    key: jax.Array


def adam_gan(b1: float, b2: float):
    """pix2pix's Adam without its learning rate, which each step is given as a scalar."""
    return optax.scale_by_adam(b1, b2)


def _global_mean(sum_value, count):
    return sum_value / jax.lax.stop_gradient(collectives.global_sum(count))


def adversarial_loss(logits, target: float, kind: str):
    """Mean over this device's share of the global batch of BCE-with-logits or least squares to `target`."""
    if kind == "bce":
        per_patch = optax.sigmoid_binary_cross_entropy(logits, jnp.full_like(logits, target))
    elif kind == "lsgan":
        per_patch = (jax.nn.sigmoid(logits) - target) ** 2
    else:
        raise ValueError(f"gan_loss: {kind!r}; expected one of {GAN_LOSSES}")
    return _global_mean(per_patch.sum(), per_patch.size)


def _images(batch):
    return batch["image"][..., None]


def d_step(state: PretrainState, batch, lr, *, model, gan_loss: str, b1: float, b2: float):
    """One discriminator update on real (x, d) and fake (x, G(x)) pairs; G and its statistics unchanged."""
    generator, discriminator = UNetGenerator(model), PatchDiscriminator(model)
    # G in eval mode: this step must not move G's running statistics.
    fake = jax.lax.stop_gradient(generator.apply({"params": state.params, "batch_stats": state.batch_stats},
                                                 _images(batch), train=False))

    def loss_fn(d_params):
        variables = {"params": d_params, "batch_stats": state.d_stats}
        both = jnp.concatenate([batch["depth"], fake])
        logits, updates = discriminator.apply(variables, jnp.concatenate([_images(batch)] * 2), both, train=True,
                                              mutable=["batch_stats"])
        real_logits, fake_logits = jnp.split(logits, 2)
        loss = adversarial_loss(real_logits, 1.0, gan_loss) + adversarial_loss(fake_logits, 0.0, gan_loss)
        correct = (real_logits > 0).sum() + (fake_logits < 0).sum()
        return loss, (updates["batch_stats"], _global_mean(collectives.global_sum(correct), 2 * real_logits.size))

    (loss, (d_stats, accuracy)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.d_params)
    d_params, opt_d, _ = descend(adam_gan(b1, b2), grads, state.opt_d, state.d_params, lr)
    state = state.replace(d_params=d_params, d_stats=d_stats, opt_d=opt_d)
    return state, {"d_loss": collectives.global_sum(loss), "d_accuracy": accuracy}


def g_step(state: PretrainState, batch, lr, *, model, gan_loss: str | None, lambda_rec: float, b1: float, b2: float):
    """One generator update: λ_rec·L1 to the true depth, plus the adversarial term unless `gan_loss` is None
    (the L1-only ablation). D is applied with its running statistics and is left unchanged."""
    generator = UNetGenerator(model)

    def loss_fn(g_params):
        fake, updates = generator.apply({"params": g_params, "batch_stats": state.batch_stats}, _images(batch),
                                        train=True, mutable=["batch_stats"])
        l1 = _global_mean(jnp.abs(fake - batch["depth"]).sum(), fake.size)
        loss, adversarial = lambda_rec * l1, jnp.zeros(())
        if gan_loss is not None:
            logits = PatchDiscriminator(model).apply({"params": state.d_params, "batch_stats": state.d_stats},
                                                     _images(batch), fake, train=False)
            adversarial = adversarial_loss(logits, 1.0, gan_loss)
            loss = loss + adversarial
        return loss, (updates["batch_stats"], l1, adversarial)

    (loss, (batch_stats, l1, adversarial)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    params, opt_g, grad_norm = descend(adam_gan(b1, b2), grads, state.opt_g, state.params, lr)
    state = state.replace(params=params, batch_stats=batch_stats, opt_g=opt_g)
    return state, {"loss": collectives.global_sum(loss), "l1": collectives.global_sum(l1),
                   "g_adversarial": collectives.global_sum(adversarial), "grad_norm": grad_norm}


def pretrain_step(state: PretrainState, batch, lr, d_lr, *, model, gan_loss: str | None, lambda_rec: float,
                  b1: float, b2: float):
    """A D step then a G step on the same batch (pix2pix's alternation); the G step alone without a GAN."""
    metrics = {}
    if gan_loss is not None:
        state, metrics = d_step(state, batch, d_lr, model=model, gan_loss=gan_loss, b1=b1, b2=b2)
    state, g_metrics = g_step(state, batch, lr, model=model, gan_loss=gan_loss, lambda_rec=lambda_rec, b1=b1, b2=b2)
    return state.replace(step=state.step + 1), {**metrics, **g_metrics}


def classifier_step(state, batch, lr, backbone_scale, *, model, decoder: bool, lambda_depth: float, tx,
                    backbone: tuple[str, ...]):
    """One update of the live/spoof classifier: binary CE on the live logit, + λ·L1 to the true depth when
    `lambda_depth` > 0 (the auxiliary-loss baseline). `backbone_scale` (0 or 1, a scalar so frozen and
    trained epochs share one compiled step) multiplies the updates of the `backbone` submodules."""
    net = SpoofClassifier(model, decoder)
    labels = batch["label"].astype(jnp.float32)

    def loss_fn(params):
        (logits, depth), updates = net.apply({"params": params, "batch_stats": state.batch_stats}, _images(batch),
                                             train=True, mutable=["batch_stats"])
        ce = _global_mean(optax.sigmoid_binary_cross_entropy(logits, labels).sum(), logits.size)
        loss = ce
        if lambda_depth > 0:
            loss = loss + lambda_depth * _global_mean(jnp.abs(depth - batch["depth"]).sum(), depth.size)
        return loss, (updates["batch_stats"], logits, ce)

    (loss, (batch_stats, logits, ce)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    scale = {name: (backbone_scale if name in backbone else 1.0) for name in grads}
    grads = {name: jax.tree.map(lambda g, s=scale[name]: g * s, tree) for name, tree in grads.items()}
    params, opt, grad_norm = descend(tx, grads, state.opt, state.params, lr)
    params = {name: jax.tree.map(lambda new, old, s=scale[name]: old + s * (new - old), params[name],
                                 state.params[name]) for name in params}
    correct = ((logits > 0) == (labels > 0.5)).sum()
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt=opt), {
        "loss": collectives.global_sum(loss), "ce": collectives.global_sum(ce), "grad_norm": grad_norm,
        "accuracy": _global_mean(collectives.global_sum(correct), logits.size)}


def classifier_outputs(params, batch_stats, batch, *, model, decoder: bool):
    """Eval mode: the live logit and, with a decoder, the mean predicted depth of each image."""
    logits, depth = SpoofClassifier(model, decoder).apply({"params": params, "batch_stats": batch_stats},
                                                          _images(batch), train=False)
    out = {"live_logit": logits}
    if depth is not None:
        out["mean_depth"] = depth.mean(axis=(1, 2))
    return out


def generator_outputs(params, batch_stats, batch, *, model):
    """Eval mode: each image's mean predicted depth and its L1 to the true depth."""
    depth = UNetGenerator(model).apply({"params": params, "batch_stats": batch_stats}, _images(batch), train=False)
    return {"mean_depth": depth.mean(axis=(1, 2)), "l1": jnp.abs(depth - batch["depth"]).mean(axis=(1, 2))}
