"""The networks of adversarial pseudo-depth backbone training (Paik, Ko, Yoo 2021).

RECONSTRUCTION: the paper's architecture is not public (spec related_systems §4.2). These follow
standard practice: a pix2pix-style conditional GAN with a small U-Net generator (sigmoid depth map at
the input resolution) and a conditional PatchGAN discriminator on (image, depth); the classifier reuses
the generator's encoder (optionally its decoder too) under the same submodule names, so stage 1's
weights copy over by an explicit path mapping (`reuse_mapping`). Inputs are (B, H, W, 1) in [0, 1].
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax.numpy as jnp

from darts_jax.engine import collectives

REUSE_MODES = ("encoder", "encoder_decoder")


@dataclasses.dataclass(frozen=True)
class DepthModelConfig:
    size: int = 32  # input and depth-map side
    width: int = 8  # channels of the first level; doubled at each of the `levels` downsamplings
    levels: int = 3
    disc_width: int = 8

    def __post_init__(self):
        if self.size % 2 ** self.levels:
            raise ValueError(f"size: {self.size} does not halve {self.levels} times (--levels)")
        if self.width < 1 or self.levels < 1 or self.disc_width < 1:
            raise ValueError("width, levels and disc_width must be at least 1")


def _norm(train: bool):
    # Statistics over the global batch when the step is mapped over devices.
    axis = collectives.axis_name() if train else None
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, axis_name=axis)


class ConvBlock(nn.Module):
    features: int
    strides: int = 1

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.Conv(self.features, (3, 3), strides=self.strides, use_bias=False)(x)
        return nn.leaky_relu(_norm(train)(x), 0.2)


class Encoder(nn.Module):
    """A convolution at full resolution, then `levels` stride-2 blocks; returns every level's features."""
    config: DepthModelConfig

    @nn.compact
    def __call__(self, x, train: bool):
        features = [ConvBlock(self.config.width)(x, train)]
        for level in range(1, self.config.levels + 1):
            down = ConvBlock(self.config.width * 2 ** level, strides=2)(features[-1], train)
            features.append(ConvBlock(self.config.width * 2 ** level)(down, train))
        return features


class Decoder(nn.Module):
    """Upsampling with skips from the encoder, to one sigmoid channel: the depth map in [0, 1]."""
    config: DepthModelConfig

    @nn.compact
    def __call__(self, features, train: bool):
        x = features[-1]
        for level in range(self.config.levels - 1, -1, -1):
            x = nn.ConvTranspose(self.config.width * 2 ** level, (2, 2), strides=(2, 2))(x)
            x = ConvBlock(self.config.width * 2 ** level)(jnp.concatenate([x, features[level]], -1), train)
        return nn.sigmoid(nn.Conv(1, (1, 1))(x))[..., 0]


class UNetGenerator(nn.Module):
    config: DepthModelConfig

    @nn.compact
    def __call__(self, images_BxHxWx1, train: bool):
        """(B, H, W) depth map in [0, 1]."""
        return Decoder(self.config, name="decoder")(Encoder(self.config, name="encoder")(images_BxHxWx1, train), train)


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: real/fake logits on a (size/4)² grid of patches of (image, depth)."""
    config: DepthModelConfig

    @nn.compact
    def __call__(self, images_BxHxWx1, depth_BxHxW, train: bool):
        x = jnp.concatenate([images_BxHxWx1, depth_BxHxW[..., None]], -1)
        x = nn.leaky_relu(nn.Conv(self.config.disc_width, (4, 4), strides=2)(x), 0.2)
        x = nn.Conv(2 * self.config.disc_width, (4, 4), strides=2, use_bias=False)(x)
        x = nn.leaky_relu(_norm(train)(x), 0.2)
        return nn.Conv(1, (3, 3))(x)[..., 0]


class SpoofClassifier(nn.Module):
    """Encoder (named as in the generator) + global average pooling + a linear live logit.

    With `decoder`, the generator's decoder predicts a depth map too and its mean joins the pooled
    features: the head sees the predicted map. Returns (live logits (B,), depth map (B, H, W) or None).
    """
    config: DepthModelConfig
    decoder: bool = False

    @nn.compact
    def __call__(self, images_BxHxWx1, train: bool):
        features = Encoder(self.config, name="encoder")(images_BxHxWx1, train)
        pooled_BxC = features[-1].mean(axis=(1, 2))
        depth = None
        if self.decoder:
            depth = Decoder(self.config, name="decoder")(features, train)
            pooled_BxC = jnp.concatenate([pooled_BxC, depth.mean(axis=(1, 2))[:, None]], -1)
        return nn.Dense(1, name="head")(pooled_BxC)[:, 0], depth


def reuse_mapping(reuse: str) -> dict[str, str]:
    """Generator submodule -> classifier submodule whose parameters and BN statistics stage 2 copies."""
    if reuse not in REUSE_MODES:
        raise ValueError(f"reuse: {reuse!r}; expected one of {REUSE_MODES}")
    return {"encoder": "encoder"} if reuse == "encoder" else {"encoder": "encoder", "decoder": "decoder"}
