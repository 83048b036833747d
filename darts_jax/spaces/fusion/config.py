"""The model config of the audio-visual fusion space (STGS-BMNAS, spec related_systems §2.3 to §2.8).

The inputs are the frozen backbones' taps, already max-pooled to `length` positions and packed along
channels (`data.synthav.features`): `taps` names them in order, `tap_channels` gives each one's width.
Defaults are the authors' (C = 128, L = 8, S = 2 steps, 2 inner steps, dropout 0.2). How a search draws
the architecture weights is the search's `relaxation` (darts_jax.relaxations.SamplerConfig), handed to
the supernet at call time; the space's search default is the paper's best, `gumbel_st_mc` at λ = 10, M = 15.
"""
from __future__ import annotations

import dataclasses

FUSION_OPS = ("Sum", "ScaleDotAttn", "LinearGLU", "ConcatFC")
EDGE_PRIMITIVES = ("none", "skip")
AGGREGATIONS = ("weighted_sum", "concat_conv")
VIDEO_TAPS = ("v1", "v2", "v3", "v4")
AUDIO_TAPS = ("a1", "a2", "a3", "a4")
SHAPE_FIELDS = ("taps", "tap_channels", "channels", "length", "steps", "node_steps", "aggregation")


@dataclasses.dataclass(frozen=True)
class FusionConfig:
    taps: tuple[str, ...] = VIDEO_TAPS + AUDIO_TAPS
    # Each tap's width; empty until a run reads them from its feature cache (spoofing.av_pipeline).
    tap_channels: tuple[int, ...] = ()
    channels: int = 128  # C of the reshape layers and the fusion ops
    length: int = 8  # L, the positions (time) every tap is pooled to
    steps: int = 2  # S, fusion steps of the cell
    node_steps: int = 2  # inner steps of each fusion node
    dropout: float = 0.2
    # How a node combines its inner steps, in search and in the derived network alike: STGS' ω-weighted
    # sum, or BM-NAS' derived-network concatenation + 1x1 conv (`concat_conv`, the repo's retraining).
    aggregation: str = "weighted_sum"
    num_classes: int = 2

    def __post_init__(self):
        if len(set(self.taps)) != len(self.taps) or (self.tap_channels and len(self.taps) != len(self.tap_channels)):
            raise ValueError(f"taps {self.taps} and tap_channels {self.tap_channels}: one width per distinct tap")
        if len(self.taps) < 2:
            raise ValueError(f"taps: {self.taps} must name at least 2 inputs (a cell fuses a pair)")
        for name in ("channels", "length", "steps", "node_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} (--{name.replace('_', '-')}): {getattr(self, name)} must be at least 1")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation: {self.aggregation!r} is not one of {', '.join(AGGREGATIONS)}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: {self.dropout} must be in [0, 1)")

    @property
    def num_edges(self) -> int:
        """Edges of the fusion cell: step i reads the taps and the i earlier steps."""
        return sum(len(self.taps) + i for i in range(self.steps))

    @property
    def node_edges(self) -> int:
        """Edges inside a fusion node: inner step t reads x, y and the t earlier inner steps."""
        return sum(2 + t for t in range(self.node_steps))
