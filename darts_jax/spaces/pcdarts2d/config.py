"""The model config of the 2-D PC-DARTS space (spec §2, §5.2): front end, size, K, primitives.

Every field but `depthwise`, `mask` and `max_skips` decides the shapes of the state; a checkpoint refuses
to resume under a different value of any of them.
"""
from __future__ import annotations

import dataclasses

from darts_jax.data.audio import SAMPLE_RATE

PRIMITIVES = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)
FRONTENDS = ("lfcc", "lfb", "spec")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    frontend: str = "lfcc"
    layers: int = 4
    init_channels: int = 16
    partial_k: int = 2
    primitives: tuple[str, ...] = PRIMITIVES
    num_classes: int = 2
    sample_rate: int = SAMPLE_RATE
    num_samples: int = 64000
    # How depthwise convolutions are lowered; "auto" picks per backend (spec/jax_notes §7).
    # Same parameters and results either way, so it is not part of the architecture.
    depthwise: str = "auto"
    # Frequency masking of the features in training (spec §6); no effect on shapes or evaluation.
    mask: bool = False
    # Collapse remedy at derivation (P-DARTS): at most this many skip connections in the normal cell;
    # None (the authors') has no cap.
    max_skips: int | None = None

    def __post_init__(self):
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend: {self.frontend!r} is not one of {', '.join(FRONTENDS)}")
        check_cell_fields(self, PRIMITIVES)
        if self.max_skips is not None and not 0 <= self.max_skips <= 8:
            raise ValueError(f"max_skips: {self.max_skips} must be between 0 and the 8 edges of a cell")
        if self.depthwise not in ("auto", "grouped", "dense"):
            raise ValueError(f"depthwise: {self.depthwise!r} must be auto, grouped or dense")


def check_cell_fields(config, known_primitives) -> None:
    """The checks every PC-DARTS cell config needs (the raw space's too): size, K, primitives."""
    if config.layers < 1:
        raise ValueError(f"layers: {config.layers} must be at least 1")
    if config.init_channels < 2 or config.init_channels % 2:
        raise ValueError(f"init_channels: {config.init_channels} must be an even number >= 2")
    if config.partial_k < 1 or config.init_channels % config.partial_k:
        raise ValueError(
            f"partial_k: {config.partial_k} must be >= 1 and divide init_channels ({config.init_channels})")
    unknown = [p for p in config.primitives if p not in known_primitives]
    if unknown:
        raise ValueError(f"primitives: unknown {unknown}; known are {', '.join(known_primitives)}")
    if not set(config.primitives) - {"none"}:
        raise ValueError("primitives: needs at least one operation other than 'none'")


SHAPE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig)
                     if f.name not in ("depthwise", "mask", "max_skips"))
