"""A small face CNN with the backbone interface of the adaptation task: `features(x)` and `head(features)`.

`features` ends, as Xception's does in the reference code, with a BatchNorm before any ReLU; `head` is
ReLU, global average pooling and the classifier. The representation the prototypes average is the
feature map max-pooled over all positions (the reference's 4 × 4 max pool of a 4 × 4 map), (B, C).
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp
from jax import lax

from darts_jax.nn.layers import BatchNorm, Conv, Dense, init_variables
from darts_jax.tasks.adapt.step import Backbone

HEAD_KEYS = ("classifier",)


@dataclasses.dataclass(frozen=True)
class FaceCNNConfig:
    channels: tuple[int, ...] = (8, 16, 16)
    num_classes: int = 2


class FaceCNN(nn.Module):
    """Grayscale faces (B, H, W) in [0, 1] -> (logits (B, classes), representation (B, C_last))."""
    config: FaceCNNConfig

    def setup(self):
        self.convs = [Conv(c, kernel=3, padding=1) for c in self.config.channels]
        self.norms = [BatchNorm() for _ in self.config.channels]
        self.classifier = Dense(self.config.num_classes)

    def features(self, faces_BxHxW, train: bool):
        x = (faces_BxHxW[..., None] - 0.5) / 0.5  # the reference code's normalisation
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            x = norm(conv(x), train)
            if i < len(self.convs) - 1:
                x = nn.max_pool(nn.relu(x), (2, 2), (2, 2))
        return x

    def head(self, features_BxHxWxC):
        return self.classifier(nn.relu(features_BxHxWxC).mean(axis=(1, 2)))

    def __call__(self, faces_BxHxW, train: bool):
        features = self.features(faces_BxHxW, train)
        return self.head(features), global_max(features)


def global_max(features_BxHxWxC):
    """Max over positions, (B, C), its gradient going to the arg max. reduce_max's own gradient divides by
    the number of positions equal to the max, which unoptimised XLA (JAX_DISABLE_MOST_OPTIMIZATIONS)
    can find to be 0, and a NaN gradient poisons the step even where the ReL weight is 0."""
    flat = features_BxHxWxC.reshape(features_BxHxWxC.shape[0], -1, features_BxHxWxC.shape[-1])
    where = jnp.argmax(lax.stop_gradient(flat), axis=1, keepdims=True)
    return jnp.take_along_axis(flat, where, axis=1)[:, 0]


def init_face_cnn(seed: int, config: FaceCNNConfig, size: int = 25) -> dict:
    return init_variables(FaceCNN(config), seed, jnp.zeros((1, size, size), jnp.float32), train=False)


def face_backbone(config: FaceCNNConfig) -> Backbone:
    module = FaceCNN(config)

    def forward(variables, faces_BxHxW, train, key):
        del key  # the face CNN draws nothing
        if not train:
            return module.apply(variables, faces_BxHxW, train=False), variables["batch_stats"]
        outputs, updates = module.apply(variables, faces_BxHxW, train=True, mutable=["batch_stats"])
        return outputs, updates["batch_stats"]

    return Backbone(forward=forward, head_keys=HEAD_KEYS)
