"""Adaptation configs: the loss of each method as a frozen dataclass, and the run config around it.

Every method is the same step with other weights (spec related_systems §3.5): FT is CE alone, KD adds
distillation, T-GD the L2-SP pull to the teacher, ReL the prototype matching, FReTAL KD + ReL.
Zero-shot is the teacher itself and has no run. The defaults keep the reference code's defects out
(§3.6): the student's BatchNorm trains, φ comes from the batched forward, the teacher builds its
prototypes without augmentation, and model selection never looks at source data.
"""
from __future__ import annotations

import dataclasses

from darts_jax.engine.config import LoopConfig

PROTOTYPES = ("scalar", "vector")
REL_FORWARDS = ("same_pass", "eval_pass")


@dataclasses.dataclass(frozen=True)
class AdaptLoss:
    """L = ce·CE + kd·L_KD + rel·L_ReL + l2sp·L_L2SP, with L_KD = α·T²·KL + (1 − α)·CE (so FReTAL's
    effective CE weight is 1 + (1 − α), as in the reference code)."""
    ce: float = 1.0
    kd: float = 1.0
    rel: float = 1.0
    l2sp: float = 0.0
    temperature: float = 20.0
    alpha: float = 0.5
    prototype: str = "scalar"  # 'scalar': the reference code's channel-mean φ; 'vector': per channel
    # 'same_pass': the student's cells and φ from its training forward (BatchNorm on batch statistics);
    # 'eval_pass': from a second forward with running statistics, as the reference code's student has.
    # eval_pass matches the normalisation of the teacher's prototypes, but its gradient meets no batch
    # normalisation: on the face CNN at lr 0.05 it diverges within 4 steps (grad norm 33, 3e2, 1e6, NaN).
    rel_forward: str = "same_pass"
    cutmix_prob: float = 0.2

    def __post_init__(self):
        for name in ("ce", "kd", "rel", "l2sp"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: weight {getattr(self, name)} must be at least 0")
        if not self.temperature > 0:
            raise ValueError(f"temperature: {self.temperature} must be greater than 0")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha: {self.alpha} must be in [0, 1]")
        if not 0.0 <= self.cutmix_prob <= 1.0:
            raise ValueError(f"cutmix_prob: {self.cutmix_prob} must be in [0, 1]")
        if self.prototype not in PROTOTYPES:
            raise ValueError(f"prototype: {self.prototype!r} is not known; use one of {', '.join(PROTOTYPES)}")
        if self.rel_forward not in REL_FORWARDS:
            raise ValueError(f"rel_forward: {self.rel_forward!r} is not known; use one of {', '.join(REL_FORWARDS)}")

    def weights(self) -> dict:
        """The term weights, passed to the compiled step as values (changing them never recompiles)."""
        return {name: float(getattr(self, name)) for name in ("ce", "kd", "rel", "l2sp")}


METHODS = {
    "ft": AdaptLoss(kd=0.0, rel=0.0),
    "kd": AdaptLoss(rel=0.0),
    "tgd": AdaptLoss(kd=0.0, rel=0.0, l2sp=1.0),
    "rel": AdaptLoss(kd=0.0),
    "fretal": AdaptLoss(),
    "fretal-vector": AdaptLoss(prototype="vector"),
}
ZERO_SHOT = "zero-shot"  # the teacher, unadapted


def method_loss(method: str) -> AdaptLoss:
    if method not in METHODS:
        raise ValueError(f"method: {method!r} is not known; use one of {', '.join(METHODS)}")
    return METHODS[method]


@dataclasses.dataclass(frozen=True)
class AdaptConfig:
    """One adaptation run. The optimiser is the reference code's SGD (lr 0.05, momentum 0.1, no decay);
    epochs and batch are smaller than its 100 / 128, for a target set of a few hundred samples."""
    method: str = "fretal"
    loss: AdaptLoss = METHODS["fretal"]
    loop: LoopConfig = LoopConfig(epochs=20, log_every=10, checkpoint_every=10_000, keep_checkpoints=1,
                                  keep_best=0, select_by="target_val_error_percent", seed=0)
    batch_size: int = 32
    lr: float = 0.05
    momentum: float = 0.1
    box_axes: int = 2  # CutMix box over input axes 1..box_axes: 2 for images, 1 for waveforms
    teacher: str = ""  # where the teacher came from (recorded, not read)

    def __post_init__(self):
        method_loss(self.method)
        if self.batch_size < 2:
            raise ValueError(f"batch_size (--batch-size): {self.batch_size} must be at least 2")
        if not self.lr > 0:
            raise ValueError(f"lr (--lr): {self.lr} must be greater than 0")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum (--momentum): {self.momentum} must be in [0, 1)")
        if self.box_axes < 1:
            raise ValueError(f"box_axes: {self.box_axes} must be at least 1")


def config_for(method: str, *, epochs: int | None = None, seed: int | None = None, **fields) -> AdaptConfig:
    """The run config of `method` (its loss from METHODS), the loop's epochs and seed and other fields as given."""
    loop = fields.pop("loop", AdaptConfig.loop)
    loop = dataclasses.replace(loop, **{k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None})
    return AdaptConfig(method=method, loss=method_loss(method), loop=loop, **fields)
