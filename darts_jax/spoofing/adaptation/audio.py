"""The audio setting: a trained darts_jax spoofing detector adapts to a new attack family of SynthSpoof.

The teacher is a `darts-jax train` run (a derived PC-DARTS network) trained on the training attacks
A01-A06. The target is a held-out group of eval attacks, its trials and the eval bona fide trials split
by utterance (seeded) into a small adaptation set and a test set. Forgetting is measured on the source
attacks' eval trials, A16 (= A04) and A19 (= A06), against the same held-out bona fide test trials;
adaptation never sees them. The representation ReL averages is the network's embedding (its global
average pool before the classifier): the derived network exposes no pre-pool map, so this differs
from the reference code's max pool. Labels follow darts_jax: 1 bona fide, 0 spoof.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from darts_jax.data.protocols import NO_ATTACK
from darts_jax.spaces import get_space
from darts_jax.spoofing.adaptation.protocol import Setting
from darts_jax.spoofing.pipeline import corpus_utterances, eval_loader, load_trained
from darts_jax.tasks.adapt.step import Backbone

BONA_FIDE = 1
HEAD_KEYS = ("Head_0",)


@dataclasses.dataclass(frozen=True)
class AudioSettingConfig:
    teacher: str  # a `darts-jax train` workdir
    data: str  # the SynthSpoof (ASVspoof 2019 LA layout) folder
    target_attacks: tuple[str, ...] = ("A07", "A08", "A09")
    source_attacks: tuple[str, ...] = ("A16", "A19")  # eval trials of the training attacks A04 and A06
    adapt_fraction: float = 0.3
    batch_size: int = 16


def network_backbone(space, model, genotype) -> Backbone:
    """A derived network of `space` as the adaptation task's backbone (no drop path, masking as trained)."""
    network = space.network(model, genotype)

    def forward(variables, wave_BxS, train, key):
        if not train:
            return network.apply(variables, wave_BxS, train=False), variables["batch_stats"]
        outputs, updates = network.apply(variables, wave_BxS, train=True, drop_prob=0.0, mutable=["batch_stats"],
                                         rngs={"mask": key, "dropout": key})
        return outputs, updates["batch_stats"]

    return Backbone(forward=forward, head_keys=HEAD_KEYS)


def _waves(utterances, model, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Every utterance's eval-length wave (the loader's deterministic evaluation crop) and label."""
    waves, labels = [], []
    for batch in eval_loader(utterances, model, batch_size).one_pass():
        valid = np.asarray(batch.valid_B)
        waves.append(np.asarray(batch.wave_BxS)[valid])
        labels.append(np.asarray(batch.label_B)[valid])
    return np.concatenate(waves).astype(np.float32), np.concatenate(labels).astype(np.int32)


def split_by_utterance(indices: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(indices)
    cut = int(round(fraction * len(indices)))
    if cut in (0, len(indices)):
        raise ValueError(f"adapt_fraction: {fraction} of {len(indices)} trials leaves one split empty")
    return np.sort(order[:cut]), np.sort(order[cut:])


@functools.lru_cache(maxsize=2)
def _teacher_and_trials(teacher: str, data: str, attacks: tuple[str, ...], batch_size: int):
    """(backbone, teacher variables, attack per trial, waves, labels) of the eval trials of `attacks` and
    the bona fide ones, read once per teacher and corpus (the seeds only split them differently)."""
    train_config, genotype, variables = load_trained(teacher)
    if "Head_0" not in variables["params"]:
        raise ValueError(f"{teacher}: the network has no 'Head_0' classifier; give a pcdarts `train` run")
    eval_trials = corpus_utterances(data, "2019-la", "eval")
    present = {u.attack for u in eval_trials}
    missing = sorted(set(attacks) - present)
    if missing:
        raise ValueError(f"{data}: the eval protocol has no trials of {missing}; its attacks are "
                         f"{sorted(present - {NO_ATTACK})}")
    trials = [u for u in eval_trials if u.attack == NO_ATTACK or u.attack in attacks]
    waves, labels = _waves(trials, train_config.model, batch_size)
    backbone = network_backbone(get_space(train_config.space), train_config.model, genotype)
    return backbone, variables, np.array([u.attack for u in trials]), waves, labels


def audio_setting(config: AudioSettingConfig, seed: int) -> Setting:
    """The setting of one seed (the split of the target and bona fide trials); the teacher is fixed."""
    backbone, teacher, attacks, waves, labels = _teacher_and_trials(
        str(config.teacher), str(config.data), tuple(config.target_attacks + config.source_attacks), config.batch_size)
    bona_adapt, bona_test = split_by_utterance(np.flatnonzero(attacks == NO_ATTACK), config.adapt_fraction, seed)
    target_adapt, target_test = split_by_utterance(np.flatnonzero(np.isin(attacks, config.target_attacks)),
                                                   config.adapt_fraction, seed + 1)
    source_spoofs = np.flatnonzero(np.isin(attacks, config.source_attacks))

    def rows(*parts):
        index = np.concatenate(parts)
        return {"inputs": waves[index], "label": labels[index]}

    return Setting(name="audio", backbone=backbone, teacher=teacher, target_train=rows(bona_adapt, target_adapt),
                   source_test=rows(bona_test, source_spoofs), target_test=rows(bona_test, target_test),
                   genuine_class=BONA_FIDE, box_axes=1, teacher_source=str(config.teacher))
