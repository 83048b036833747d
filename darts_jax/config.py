"""Run configuration: frozen dataclasses, serialised to JSON with every run.

Defaults are the authors' settings (spec §5.2). `ModelConfig` holds everything that decides
the shapes of the state; a checkpoint refuses to resume under a different one.
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

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
    sample_rate: int = 16000
    num_samples: int = 64000
    # How depthwise convolutions are lowered; "auto" picks per backend (spec/jax_notes §7).
    # Same parameters and results either way, so it is not part of the architecture.
    depthwise: str = "auto"

    def __post_init__(self):
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend: {self.frontend!r} is not one of {', '.join(FRONTENDS)}")
        if self.layers < 1:
            raise ValueError(f"layers: {self.layers} must be at least 1")
        if self.init_channels < 2 or self.init_channels % 2:
            raise ValueError(f"init_channels: {self.init_channels} must be an even number >= 2")
        if self.partial_k < 1 or self.init_channels % self.partial_k:
            raise ValueError(
                f"partial_k: {self.partial_k} must be >= 1 and divide init_channels ({self.init_channels})")
        unknown = [p for p in self.primitives if p not in PRIMITIVES]
        if unknown:
            raise ValueError(f"primitives: unknown {unknown}; known are {', '.join(PRIMITIVES)}")
        if not set(self.primitives) - {"none"}:
            raise ValueError("primitives: needs at least one operation other than 'none'")
        if self.depthwise not in ("auto", "grouped", "dense"):
            raise ValueError(f"depthwise: {self.depthwise!r} must be auto, grouped or dense")


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    model: ModelConfig = ModelConfig()
    batch_size: int = 64
    epochs: int = 50
    warmup_epochs: int = 10
    lr: float = 1e-2
    lr_min: float = 1e-3
    weight_decay: float = 3e-4
    arch_lr: float = 6e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    class_weights: tuple[float, float] = (1.0, 9.0)  # (spoof, bona fide)
    mask: bool = False
    unrolled: bool = False
    seed: int = 123
    steps_per_epoch: int | None = None  # None: one pass over the weight half
    log_every: int = 20
    checkpoint_every: int = 200
    keep_checkpoints: int = 3


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: ModelConfig = ModelConfig()
    genotype: str = "pcdarts-lfcc"
    batch_size: int = 128
    epochs: int = 100
    lr: float = 1e-3
    lr_min: float = 1e-4
    weight_decay: float = 3e-4
    drop_path: float = 0.2
    class_weights: tuple[float, float] = (1.0, 9.0)
    mask: bool = False
    seed: int = 123
    steps_per_epoch: int | None = None
    log_every: int = 20
    checkpoint_every: int = 200
    keep_checkpoints: int = 3


def to_dict(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls, data: dict, where: str = "config"):
    """Builds `cls` from a JSON dict, naming the offending field on bad input."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known fields are {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, f"{where}.{name}") for name, value in data.items()}
    return cls(**kwargs)


def _coerce(hint, value, where):
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        return tuple(value)
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int):
        return float(value)
    if hint in (int, float, str, bool) and not isinstance(value, hint):
        raise ValueError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def save_json(config, path: str | Path) -> None:
    Path(path).write_text(json.dumps(to_dict(config), indent=2) + "\n")


def load_json(cls, path: str | Path):
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    return from_dict(cls, data, str(path))


def architecture_differences(saved: ModelConfig, current: ModelConfig) -> list[str]:
    """Fields that change the state's shapes and differ between two model configs."""
    shape_free = {"depthwise"}
    return [
        f"{f.name}: checkpoint has {getattr(saved, f.name)!r}, this run has {getattr(current, f.name)!r}"
        for f in dataclasses.fields(ModelConfig)
        if f.name not in shape_free and getattr(saved, f.name) != getattr(current, f.name)
    ]
