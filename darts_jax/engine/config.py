"""Run configuration: frozen dataclasses, serialised to JSON with every run, and the configs shared by tasks.

A task's config nests a `LoopConfig` (the run driver's), an `OptimConfig` (the weights') and its
search space's model config. `from_dict` names the offending field of bad input; `field_types`
lets a caller pick the type of a field that depends on the data (a space's model config).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """What the run driver needs: how long, how often to log and checkpoint, and the seed."""
    epochs: int = 50
    steps_per_epoch: int | None = None  # None: one pass over the task's main loader
    log_every: int = 20
    checkpoint_every: int = 200
    keep_checkpoints: int = 3
    # Epoch selection: the `keep_best` epoch-end checkpoints with the lowest `select_by` of the epoch
    # summary (the dev EER by default; ties go to the later epoch) are kept beside the newest ones; none when
    # the run has no such value.
    keep_best: int = 1
    select_by: str = "dev_eer_percent"
    seed: int = 123
    # A run to take the initial weights (params and BatchNorm statistics) from; a resumed run ignores it.
    init_from: str | None = None
    # The state between steps as a few flat buffers (engine.packing) or as its 1,000-odd leaves. None:
    # packed on GPU and TPU, where dispatching the leaves is expected to cost more than a short step (not
    # measured yet), leaves on CPU, where packing cut host time per step from 30-48 to 2-5 ms but compiled
    # the search steps 20-70 % longer. The arithmetic is the same either way, up to XLA's rounding of
    # fused values (the fixed-seed regression search was bit-identical).
    packed_state: bool | None = None

    def __post_init__(self):
        _at_least(self, ("epochs", 1), ("log_every", 1), ("checkpoint_every", 1), ("keep_checkpoints", 1),
                  ("keep_best", 0), ("seed", 0))
        if self.steps_per_epoch is not None:
            _at_least(self, ("steps_per_epoch", 1))
        if self.packed_state not in (None, True, False):
            raise ValueError(f"packed_state (--packed-state): {self.packed_state!r} must be true, false or null")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """The network weights' optimiser: Adam with coupled L2, cosine from lr to lr_min over the epochs."""
    batch_size: int = 64
    lr: float = 1e-2
    lr_min: float = 1e-3
    weight_decay: float = 3e-4
    class_weights: tuple[float, float] = (1.0, 9.0)  # per class index: (spoof, bona fide) for spoofing

    def __post_init__(self):
        _at_least(self, ("batch_size", 1), ("lr_min", 0.0), ("weight_decay", 0.0))
        if not self.lr > 0:
            raise ValueError(f"lr: {self.lr} must be greater than 0")
        if self.lr_min > self.lr:
            raise ValueError(f"lr_min: {self.lr_min} is above lr {self.lr}; the cosine schedule decays from lr")
        if len(self.class_weights) < 2 or not all(w > 0 for w in self.class_weights):
            raise ValueError(f"class_weights: {self.class_weights} must be positive, one per class")


def _at_least(config, *bounds) -> None:
    """Refuses a field below its least sensible value, naming the field (as the command-line flag too)."""
    for name, least in bounds:
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} (--{name.replace('_', '-')}): {value!r} must be at least {least}")


def to_dict(config) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def from_dict(cls, data: dict, where: str = "config", field_types: dict | None = None):
    """Builds `cls` from a JSON dict, naming the offending field on bad input."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown}; known fields are {sorted(fields)}")
    hints = {**typing.get_type_hints(cls), **(field_types or {})}
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


def read_json(path: str | Path):
    """The decoded JSON of the file `path`; invalid JSON is a ValueError naming the file and the line."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None


def load_json(cls, path: str | Path, field_types: dict | None = None):
    return from_dict(cls, read_json(path), str(path), field_types)




def replace_fields(config, values: dict, strict: bool = False):
    """`config` with every field named in `values` replaced, at any depth of nested configs.

    Field names are unique across a task's nested configs, so one flat set of command-line flags (or
    keyword arguments) addresses them all. Names that are no field are ignored, or with `strict` refused.
    """
    if strict:
        unknown = sorted(set(values) - set(field_names(config)))
        if unknown:
            raise ValueError(f"{type(config).__name__}: unknown field(s) {unknown}; "
                             f"known fields are {sorted(field_names(config))}")
    changes = {}
    for f in dataclasses.fields(config):
        current = getattr(config, f.name)
        if dataclasses.is_dataclass(current):
            changes[f.name] = replace_fields(current, values)
        elif f.name in values:
            changes[f.name] = values[f.name]
    return dataclasses.replace(config, **changes)


def with_fields(config, **values):
    """`replace_fields(config, values, strict=True)`: e.g. `with_fields(SearchConfig(model=m), epochs=3, lr=0.1)`."""
    return replace_fields(config, values, strict=True)


def field_names(config) -> list[str]:
    """Every field name of a config and of the configs nested in it."""
    names = []
    for f in dataclasses.fields(config):
        names.append(f.name)
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            names += field_names(value)
    return names
