"""The frozen backbones whose taps the fusion search picks from (spec §2.2), and their pretraining.

A backbone is a `Backbone` record: tap names, a Flax module returning (taps, logits) with each tap laid
out (B, time, ..., C) or (B, C), how to turn a corpus split into its inputs, and which label it is
pretrained on. The defaults are small ResNets: a video one applied to each frame (taps v1..v3 after its
three stages, v4 the clip-pooled vector) and an audio one on the log spectrogram (a1..a3, a4), as the
authors' I3D ResNet-50 and ResNet-34 at CPU size. Each is pretrained on its own stream's real/fake
label, as BM-NAS does, then frozen; any other backbone that gives taps works the same way.

`grid`: each stage map keeps a coarse `grid` (x `grid`) layout of its non-time axes, averaged and moved
into channels, before the reshape layer max-pools time. With `grid` 0 the maps are handed over whole and
the reshape's max over every non-time axis keeps no spatial layout: on SynthAV that max loses the mouth's
opening (measured in the report), which a lip-sync test needs.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from darts_jax.nn.layers import BatchNorm
from darts_jax.spaces.fusion.layers import adaptive_max_pool


class ResidualBlock(nn.Module):
    features: int
    strides: tuple[int, int]

    @nn.compact
    def __call__(self, x, train: bool):
        y = nn.relu(BatchNorm()(nn.Conv(self.features, (3, 3), self.strides, use_bias=False)(x), train))
        y = BatchNorm()(nn.Conv(self.features, (3, 3), use_bias=False)(y), train)
        if x.shape[-1] != self.features or self.strides != (1, 1):
            x = BatchNorm()(nn.Conv(self.features, (1, 1), self.strides, use_bias=False)(x), train)
        return nn.relu(x + y)


class TapResNet(nn.Module):
    """A 2-D ResNet on (N, H, W, 1) images: stem, then one stage per width (`blocks` blocks each), the
    output of every stage a tap, then the global mean a vector tap and a linear head."""
    widths: Sequence[int]
    stem_strides: tuple[int, int]
    stage_strides: Sequence[tuple[int, int]]
    blocks: int = 1
    num_classes: int = 2

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.relu(BatchNorm()(nn.Conv(self.widths[0], (3, 3), self.stem_strides, use_bias=False)(x), train))
        taps = []
        for width, strides in zip(self.widths, self.stage_strides):
            for b in range(self.blocks):
                x = ResidualBlock(width, strides if b == 0 else (1, 1))(x, train)
            taps.append(x)
        return taps


def grid_pool(map_BxTx___xC, grid: int):
    """(B, T, *axes, C) -> (B, T, grid^k · C): each further axis averaged into `grid` cells, the cells moved
    into channels; `grid` 0 returns the map unchanged."""
    if grid == 0:
        return map_BxTx___xC
    batch, time, *axes, channels = map_BxTx___xC.shape
    blocked = map_BxTx___xC.reshape(batch, time, *[d for size in axes for d in (grid, size // grid)], channels)
    pooled = blocked.mean(axis=tuple(3 + 2 * i for i in range(len(axes))))
    return pooled.reshape(batch, time, -1)


class VideoResNet(nn.Module):
    """Frames (B, T, H, W) -> taps (B, T, h, w, C) per stage (see `grid_pool`) and the clip's pooled vector."""
    widths: Sequence[int] = (16, 32, 64)
    blocks: int = 1
    grid: int = 4

    @nn.compact
    def __call__(self, frames_BxTxHxW, train: bool):
        batch, time = frames_BxTxHxW.shape[:2]
        images = frames_BxTxHxW.reshape(batch * time, *frames_BxTxHxW.shape[2:], 1)
        maps = TapResNet(self.widths, (2, 2), [(1, 1)] + [(2, 2)] * (len(self.widths) - 1), self.blocks)(images, train)
        maps = [m.reshape(batch, time, *m.shape[1:]) for m in maps]
        pooled = maps[-1].mean(axis=(1, 2, 3))
        return [grid_pool(m, self.grid) for m in maps] + [pooled], nn.Dense(2)(pooled)


class AudioResNet(nn.Module):
    """Log spectrogram (B, frames, bands) -> taps (B, time, bands', C) per stage (see `grid_pool`) and a
    pooled vector."""
    widths: Sequence[int] = (16, 32, 64)
    blocks: int = 1
    grid: int = 4

    @nn.compact
    def __call__(self, spectrogram_BxTxF, train: bool):
        maps = TapResNet(self.widths, (1, 2), [(1, 1)] + [(2, 2)] * (len(self.widths) - 1), self.blocks)(
            spectrogram_BxTxF[..., None], train)
        pooled = maps[-1].mean(axis=(1, 2))
        return [grid_pool(m, self.grid) for m in maps] + [pooled], nn.Dense(2)(pooled)


@dataclasses.dataclass(frozen=True)
class Backbone:
    name: str
    taps: tuple[str, ...]
    module: nn.Module
    # (corpus split, normalisation statistics or None) -> (inputs, statistics); statistics come from train.
    inputs: Callable
    labels: Callable[[np.ndarray], np.ndarray]  # SynthAV categories -> this stream's label (1 real)


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    epochs: int = 8
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0


def init_backbone(backbone: Backbone, example, seed: int) -> dict:
    variables = backbone.module.init(jax.random.key(seed), example[:2], train=False)
    return {"params": variables["params"], "batch_stats": variables["batch_stats"]}


def pretrain(backbone: Backbone, train_inputs, train_labels, config: PretrainConfig, say=print) -> dict:
    """Trains `backbone` on its stream's label with Adam (decoupled decay); returns its frozen variables."""
    variables = init_backbone(backbone, train_inputs, config.seed)
    tx = optax.adamw(optax.cosine_decay_schedule(config.lr, config.epochs * (len(train_labels) // config.batch_size)),
                     weight_decay=config.weight_decay)

    @jax.jit
    def step(variables, opt_state, inputs, labels):
        def loss_fn(params):
            (_, logits), updates = backbone.module.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                                         inputs, train=True, mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), updates["batch_stats"]

        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(variables["params"])
        updates, opt_state = tx.update(grads, opt_state, variables["params"])
        params = optax.apply_updates(variables["params"], updates)
        return {"params": params, "batch_stats": batch_stats}, opt_state, loss

    opt_state = tx.init(variables["params"])
    rng = np.random.default_rng([config.seed, 17])
    for epoch in range(config.epochs):
        order = rng.permutation(len(train_labels))
        losses = []
        for start in range(0, len(order) - config.batch_size + 1, config.batch_size):
            rows = order[start:start + config.batch_size]
            variables, opt_state, loss = step(variables, opt_state, train_inputs[rows], train_labels[rows])
            losses.append(float(loss))
        say(f"{backbone.name} backbone: epoch {epoch}: train loss {np.mean(losses):.4f}")
    return variables


def apply_frozen(backbone: Backbone, variables: dict, inputs, length: int, batch_size: int = 64):
    """(taps pooled to `length` and packed (N, length, Σ C), logits (N, 2)) in eval mode, no gradient."""
    @jax.jit
    def forward(chunk):
        taps, logits = backbone.module.apply(variables, chunk, train=False)
        return jnp.concatenate([adaptive_max_pool(t, length) for t in taps], axis=-1), logits

    packed, logits = zip(*(jax.device_get(forward(inputs[i:i + batch_size]))
                           for i in range(0, len(inputs), batch_size)))
    return np.concatenate(packed), np.concatenate(logits)


def tap_channels(backbone: Backbone, variables: dict, example) -> list[int]:
    taps, _ = jax.eval_shape(lambda x: backbone.module.apply(variables, x, train=False), example[:2])
    return [int(t.shape[-1]) for t in taps]
