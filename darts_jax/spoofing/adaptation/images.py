"""The image setting: a small face CNN trained on real + manipulation A adapts to manipulation B.

Per seed, everything is drawn afresh (corpus views, teacher, target subset, adaptation), so the seeds
are independent replicates of the whole pipeline. The teacher is trained with the adaptation step and
the FT loss (CE alone, no CutMix) on the source training set; the target set is a small subset of the
B training set plus as many real training views (the real class is shared by both domains).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from darts_jax.data.synthfaces.manipulation import build_manipulation_corpus
from darts_jax.engine.config import LoopConfig
from darts_jax.spoofing.adaptation.face_cnn import FaceCNNConfig, face_backbone, init_face_cnn
from darts_jax.spoofing.adaptation.protocol import Setting
from darts_jax.tasks.adapt.config import AdaptConfig, AdaptLoss
from darts_jax.tasks.adapt.task import train_source_model

REAL, FAKE = 0, 1


@dataclasses.dataclass(frozen=True)
class ImageSettingConfig:
    strength_a: float = 0.0  # the corpus's defaults; manipulation.py says why
    strength_b: float = 0.1
    per_kind: tuple[int, int] = (1000, 500)  # (train, test) views per kind
    target_per_class: int = 100  # B and real views in the adaptation set (10 % of the B training views)
    teacher_epochs: int = 6
    model: FaceCNNConfig = FaceCNNConfig()
    batch_size: int = 32


def two_class(real: np.ndarray, fake: np.ndarray) -> dict:
    return {"inputs": np.concatenate([real, fake]),
            "label": np.concatenate([np.full(len(real), REAL), np.full(len(fake), FAKE)]).astype(np.int32)}


def train_teacher(corpus: dict, config: ImageSettingConfig, seed: int, workdir, restart: bool = True) -> dict:
    """The source detector: real vs A, CE alone, from a seeded initialisation; its run in WORKDIR."""
    loss = AdaptLoss(kd=0.0, rel=0.0, cutmix_prob=0.0)
    run = AdaptConfig(method="ft", loss=loss, batch_size=config.batch_size,
                      loop=LoopConfig(epochs=config.teacher_epochs, log_every=50, checkpoint_every=10_000,
                                      keep_checkpoints=1, keep_best=0, seed=seed))
    train = two_class(corpus["train"]["real"], corpus["train"]["a"])
    return train_source_model(face_backbone(config.model), init_face_cnn(seed, config.model), train, None, run,
                              workdir, restart=restart, quiet=True).variables


def image_setting(config: ImageSettingConfig, seed: int, workdir, corpus: dict | None = None,
                  teacher: dict | None = None, teacher_source: str = "") -> Setting:
    """The setting of one seed: its corpus (built unless given), teacher (trained in WORKDIR unless given)
    and target subset."""
    if corpus is None:
        corpus = build_manipulation_corpus(seed, per_kind=config.per_kind, strength_a=config.strength_a,
                                           strength_b=config.strength_b)
    if teacher is None:
        teacher = train_teacher(corpus, config, seed, Path(workdir) / f"teacher-seed{seed}")
        teacher_source = f"face CNN trained on real vs A, seed {seed}"
    rng = np.random.default_rng([seed, 13])
    n = config.target_per_class
    for kind in ("real", "b"):
        if n > len(corpus["train"][kind]):
            raise ValueError(f"target_per_class: {n} is more than the corpus's {len(corpus['train'][kind])} "
                             f"training views of {kind}")
    target_train = two_class(corpus["train"]["real"][rng.permutation(len(corpus["train"]["real"]))[:n]],
                             corpus["train"]["b"][rng.permutation(len(corpus["train"]["b"]))[:n]])
    return Setting(name="images", backbone=face_backbone(config.model), teacher=teacher, target_train=target_train,
                   source_test=two_class(corpus["test"]["real"], corpus["test"]["a"]),
                   target_test=two_class(corpus["test"]["real"], corpus["test"]["b"]),
                   genuine_class=REAL, box_axes=2, teacher_source=teacher_source)
