"""The model config of the Raw PC-DARTS space (spec §4, §5.3): front end, sinc bank, size, K, GRU.

Defaults are the authors' (8 cells, 64 channels, fixed mel sinc, masking on). Band edges learned in a
search run (`learnable_sinc`) reach a training run through `sinc_from`, the search's workdir: they are
read once, here, into `sinc_low_hz` / `sinc_band_hz`, so the saved config holds them and the trained
network stays self-contained; training refuses a learnable sinc (spec §4: loaded filters are frozen).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from darts_jax.data.audio import SAMPLE_RATE
from darts_jax.spaces.pcdarts2d.config import check_cell_fields

PRIMITIVES = (
    "none",
    "max_pool_3",
    "avg_pool_3",
    "skip_connect",
    "std_conv_3",
    "std_conv_5",
    "dil_conv_3",
    "dil_conv_5",
)
FRONTENDS = ("sinc", "conv")
SINC_SCALES = ("mel", "linear", "lem")
# The authors compute C + 4 filters and keep the first C (spec §4).
EXTRA_SINC_FILTERS = 4
# Front-end taps: the authors request 128, which SincNet makes odd (129); the plain conv keeps 128.
REQUESTED_TAPS = 128
SINC_TAPS = REQUESTED_TAPS + 1
FRONTEND_PADDING = 2


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    frontend: str = "sinc"
    sinc_scale: str = "mel"
    # Band edges are parameters (search only); otherwise they are constants.
    learnable_sinc: bool = False
    # A search run (workdir) whose learned band edges this network uses, frozen. Read into the two
    # fields below when the config is made; empty fields mean the scale's initial bank.
    sinc_from: str | None = None
    sinc_low_hz: tuple[float, ...] = ()
    sinc_band_hz: tuple[float, ...] = ()
    layers: int = 8
    init_channels: int = 64
    partial_k: int = 2
    primitives: tuple[str, ...] = PRIMITIVES
    gru_hidden: int = 1024
    gru_layers: int = 3
    embedding_dim: int = 1024
    num_classes: int = 2
    sample_rate: int = SAMPLE_RATE
    num_samples: int = 64000
    # Sinc filter masking in training (spec §4, on by default); no effect on shapes or evaluation.
    mask: bool = True

    def __post_init__(self):
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend: {self.frontend!r} is not one of {', '.join(FRONTENDS)} (the raw space)")
        if self.sinc_scale not in SINC_SCALES:
            raise ValueError(f"sinc_scale: {self.sinc_scale!r} is not one of {', '.join(SINC_SCALES)}")
        check_cell_fields(self, PRIMITIVES)
        for name in ("gru_hidden", "gru_layers", "embedding_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: {getattr(self, name)} must be at least 1")
        stem_length = stem_input_length(self.frontend, self.num_samples)
        if stem_length < 2 or stem_length % 2 or stem_length >> (self.layers + 1) < 1:
            raise ValueError(
                f"num_samples: {self.num_samples} gives {stem_length} steps after the front end and MaxPool1d(3); "
                f"the cells need an even number (the halved s0 and the stride-2 stem's s1 must agree, as in "
                f"the authors' code at 64000 -> 21292) that {self.layers} cells can halve down to >= 1")
        if self.sinc_from is not None and not self.sinc_low_hz:
            low, band = bands_of_search_run(self.sinc_from)
            object.__setattr__(self, "sinc_low_hz", low)
            object.__setattr__(self, "sinc_band_hz", band)
        for name in ("sinc_low_hz", "sinc_band_hz"):
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        bands = self.init_channels + EXTRA_SINC_FILTERS
        for name in ("sinc_low_hz", "sinc_band_hz"):
            if getattr(self, name) and len(getattr(self, name)) != bands:
                raise ValueError(f"{name}: {len(getattr(self, name))} values, expected {bands} "
                                 f"(init_channels + {EXTRA_SINC_FILTERS})")
        if bool(self.sinc_low_hz) != bool(self.sinc_band_hz):
            raise ValueError("sinc_low_hz, sinc_band_hz: give both band-edge vectors or neither")
        if self.sinc_low_hz and self.frontend != "sinc":
            raise ValueError(f"sinc_from: band edges were given but frontend is {self.frontend!r}")


def stem_input_length(frontend: str, num_samples: int) -> int:
    """Length after the front end (padding 2; sinc 129 taps, plain conv 128) and MaxPool1d(3)."""
    taps = SINC_TAPS if frontend == "sinc" else REQUESTED_TAPS
    return (num_samples + 2 * FRONTEND_PADDING - taps + 1) // 3


def bands_of_search_run(workdir: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(low_hz_, band_hz_) of the newest checkpoint of a search run made with a learnable sinc."""
    from darts_jax.engine.checkpoint import load_weights

    step, weights = load_weights(workdir)
    frontend = weights["params"].get("stem", {}).get("frontend", {}).get("sinc", {})
    if "low_hz_" not in frontend:
        raise ValueError(f"sinc_from: the checkpoint of {workdir} (step {step}) has no learned sinc band edges; "
                         f"give a search run made with --learnable-sinc")
    return (tuple(np.asarray(frontend["low_hz_"], np.float64).tolist()),
            tuple(np.asarray(frontend["band_hz_"], np.float64).tolist()))


# `mask` changes no state; `sinc_from` only says where the band edges (which are compared) came from.
SHAPE_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig) if f.name not in ("mask", "sinc_from"))
