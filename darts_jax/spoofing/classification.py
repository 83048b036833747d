"""Detection metrics beyond ASVspoof's: ROC-AUC, balanced accuracy, ISO/IEC 30107-3 APCER / BPCER / ACER
and HTER, shared by the face anti-spoofing, face-manipulation and audio-visual systems.

Conventions as in `metrics`: higher scores mean "more bona fide" (live, real), and a trial is accepted as
bona fide when its score is strictly above the threshold. Fix thresholds on a dev set (for example the dev
EER threshold of `metrics.compute_eer`) and apply them unchanged to test sets: a threshold chosen on the
test set makes HTER and ACER optimistic.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.stats import rankdata

from darts_jax.spoofing.metrics import _score_vector


def roc_auc(bona_scores, attack_scores) -> float:
    """Area under the ROC curve: P(bona fide score > attack score), ties counted one half (Mann-Whitney U)."""
    bona = _score_vector(bona_scores, "bona_scores")
    attack = _score_vector(attack_scores, "attack_scores")
    ranks = rankdata(np.concatenate([bona, attack]))
    u_statistic = ranks[:bona.size].sum() - bona.size * (bona.size + 1) / 2
    return float(u_statistic / (bona.size * attack.size))


def error_rates(bona_scores, attack_scores, threshold: float) -> tuple[float, float]:
    """(attacks accepted, bona fide rejected) as fractions: APCER / BPCER, or FAR / FRR, at `threshold`."""
    bona = _score_vector(bona_scores, "bona_scores")
    attack = _score_vector(attack_scores, "attack_scores")
    return float(np.mean(attack > threshold)), float(np.mean(bona <= threshold))


def balanced_accuracy(bona_scores, attack_scores, threshold: float = 0.0) -> float:
    """Mean of the per-class accuracies, so a detector that calls everything bona fide scores 0.5."""
    accepted_attacks, rejected_bona = error_rates(bona_scores, attack_scores, threshold)
    return 1.0 - (accepted_attacks + rejected_bona) / 2


def hter(bona_scores, attack_scores, threshold: float) -> float:
    """Half total error rate (FAR + FRR) / 2 at a threshold fixed beforehand (usually on another set)."""
    return 1.0 - balanced_accuracy(bona_scores, attack_scores, threshold)


class PadErrorRates(NamedTuple):
    """ISO/IEC 30107-3 rates: APCER per attack instrument species, the worst of them, BPCER, ACER."""

    apcer_per_species: dict[str, float]
    apcer: float
    bpcer: float
    acer: float


def pad_error_rates(bona_scores, attack_scores_by_species: dict, threshold: float) -> PadErrorRates:
    """APCER of each presentation-attack species, APCER = the worst species' (the standard's rule, which
    a pooled rate would hide), BPCER, and ACER = (APCER + BPCER) / 2."""
    if not attack_scores_by_species:
        raise ValueError("attack_scores_by_species is empty: give at least one attack species' scores")
    per_species = {}
    for species, scores in attack_scores_by_species.items():
        per_species[species], bpcer = error_rates(bona_scores, scores, threshold)
    apcer = max(per_species.values())
    return PadErrorRates(per_species, apcer, bpcer, (apcer + bpcer) / 2)
