"""Cue audit of a spoofing corpus: can trivial numbers tell bona fide from spoof?

For every cue of `darts_jax.data.cues` (timing, silence, level, DC, band energies, spectral shape,
zero-crossings, peak shape, noise floor, quantisation, file size, protocol position, mtime rank) a
logistic regression on the cue and its square is fitted on one partition (train) and scored on
another (eval), then one on all cues together; each gives a pooled EER and one EER per attack
(the attack's spoofs against all bona fide trials). A corpus without shortcuts keeps every figure
near 50 %. Works on any folder in the ASVspoof 2019 LA layout, so ASVspoof 2019 LA's known
silence shortcut shows up too.

EERs (`tie_aware_eer`) are reported folded, min(EER, 100 - EER): a cue that separates an eval attack in the opposite
direction from train is as much a shortcut (for a detector trained on such data) as one that
separates it the same way.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from darts_jax.data.cues import CUES, corpus_cues
from darts_jax.data.protocols import Utterance, load_partition

# The bounds of issue 17 (%), for eval partitions the size of SynthSpoof small's (300 bona fide, 80 trials
# per attack) or larger; with far fewer trials chance alone goes under them.
MIN_POOLED_CUE_EER = 45.0
MIN_PER_ATTACK_CUE_EER = 35.0
MIN_COMBINED_EER = 40.0
_CLIP = 6.0  # standardised cue values beyond this many standard deviations are outliers, not signal


@dataclasses.dataclass(frozen=True)
class LogisticRegression:
    """Binary logistic regression on standardised features, fitted by Newton's method with an L2 penalty."""
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray  # bias first

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, l2: float = 1e-2,
            iterations: int = 50) -> LogisticRegression:
        mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-12
        design = _with_bias((features - mean) / scale)
        labels = np.asarray(labels, float)
        weights = np.zeros(design.shape[1])
        penalty = l2 * len(labels) * np.eye(design.shape[1])
        penalty[0, 0] = 0.0
        for _ in range(iterations):
            prob = 1.0 / (1.0 + np.exp(-design @ weights))
            gradient = design.T @ (prob - labels) + penalty @ weights
            hessian = (design * (prob * (1 - prob))[:, None]).T @ design + penalty + 1e-9 * np.eye(design.shape[1])
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if np.max(np.abs(step)) < 1e-8:
                break
        return cls(mean, scale, weights)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Log-odds of class 1 (bona fide)."""
        return _with_bias((features - self.mean) / self.scale) @ self.weights


def _with_bias(features: np.ndarray) -> np.ndarray:
    return np.concatenate([np.ones((features.shape[0], 1)), features], axis=1)


@dataclasses.dataclass(frozen=True)
class CueResult:
    pooled: float  # folded EER, percent
    per_attack: dict[str, float]

    @property
    def worst_attack(self) -> str:
        return min(self.per_attack, key=self.per_attack.get)


@dataclasses.dataclass(frozen=True)
class Audit:
    cues: dict[str, CueResult]
    combined: CueResult
    trials: dict[str, int]  # eval bona fide and spoof counts, per attack too

    def failures(self) -> list[str]:
        """The cues (and the combination) under the MIN_* bounds, as readable lines."""
        lines = [f"{name}: pooled {r.pooled:.1f} % < {MIN_POOLED_CUE_EER:.0f} %"
                 for name, r in self.cues.items() if r.pooled < MIN_POOLED_CUE_EER]
        lines += [f"{name}: {r.worst_attack} {r.per_attack[r.worst_attack]:.1f} % < {MIN_PER_ATTACK_CUE_EER:.0f} %"
                  for name, r in self.cues.items() if r.per_attack[r.worst_attack] < MIN_PER_ATTACK_CUE_EER]
        if self.combined.pooled < MIN_COMBINED_EER:
            lines.append(f"combined: pooled {self.combined.pooled:.1f} % < {MIN_COMBINED_EER:.0f} %")
        return lines

    def to_json(self) -> dict:
        def entry(result):
            return {"pooled_eer_percent": result.pooled, "per_attack_eer_percent": result.per_attack}
        return {"eer": "folded: min(EER, 100 - EER)", "trials": self.trials,
                "cues": {name: entry(r) for name, r in self.cues.items()}, "combined": entry(self.combined)}


def cue_design(values: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Standardised, clipped cue values followed by their squares, so a class sitting in the middle
    of a cue's range is found as well as one at either end."""
    z = np.clip((values - mean) / scale, -_CLIP, _CLIP)
    return np.concatenate([z, z ** 2], axis=1)


def tie_aware_eer(bona_scores: np.ndarray, spoof_scores: np.ndarray) -> float:
    """EER (fraction) where the (FAR, FRR) curve, its points joined by straight lines, crosses FAR = FRR.

    Joining the points is what breaking ties at random gives on average, so scores that are all equal
    (a cue constant over the corpus, such as a count that is always 1) give 0.5. The official
    `compute_eer` puts a whole tied group on one side of its threshold and would give 0 or 1 there,
    which folding turns into a perfect shortcut. Without ties both agree to within one trial's step.
    """
    values = np.unique(np.concatenate([bona_scores, spoof_scores]))
    # Accepting scores above each value in turn: the first point accepts everything.
    frr = np.concatenate([[0.0], np.searchsorted(np.sort(bona_scores), values, side="right") / bona_scores.size])
    far = np.concatenate([[1.0], 1.0 - np.searchsorted(np.sort(spoof_scores), values, side="right")
                          / spoof_scores.size])
    gap = frr - far  # rises from -1 to +1
    k = int(np.flatnonzero(gap >= 0)[0])
    fraction = -gap[k - 1] / (gap[k] - gap[k - 1])
    return float(frr[k - 1] + fraction * (frr[k] - frr[k - 1]))


def folded_eer_report(scores: np.ndarray, utterances: list[Utterance]) -> CueResult:
    labels = np.array([u.label for u in utterances])
    attacks = np.array([u.attack for u in utterances])
    bona = scores[labels == 1]

    def folded(spoof_scores):
        eer = 100.0 * tie_aware_eer(bona, spoof_scores)
        return min(eer, 100.0 - eer)

    per_attack = {str(attack): folded(scores[attacks == attack]) for attack in sorted(set(attacks[labels == 0]))}
    return CueResult(folded(scores[labels == 0]), per_attack)


def audit_cues(fit_values: np.ndarray, fit_utts: list[Utterance], test_values: np.ndarray,
               test_utts: list[Utterance], names: tuple[str, ...] = CUES) -> Audit:
    """Per-cue and combined classifiers fitted on (fit_values, fit_utts), scored on the test set."""
    labels = np.array([u.label for u in fit_utts])
    if labels.min() == labels.max() or len({u.label for u in test_utts}) < 2:
        raise ValueError("the audit needs bona fide and spoof trials in both partitions")
    mean, scale = fit_values.mean(axis=0), fit_values.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    fit_design, test_design = cue_design(fit_values, mean, scale), cue_design(test_values, mean, scale)
    count = len(names)
    cues = {}
    for index, name in enumerate(names):
        columns = [index, count + index]
        model = LogisticRegression.fit(fit_design[:, columns], labels)
        cues[name] = folded_eer_report(model.score(test_design[:, columns]), test_utts)
    combined = LogisticRegression.fit(fit_design, labels)
    test_attacks = [u.attack for u in test_utts]
    trials = {"bona_fide": sum(u.label for u in test_utts), "spoof": sum(1 - u.label for u in test_utts)}
    trials |= {attack: test_attacks.count(attack) for attack in sorted(set(test_attacks)) if attack != "-"}
    return Audit(cues, folded_eer_report(combined.score(test_design), test_utts), trials)


def audit_corpus(data_dir: str | Path, fit_partition: str = "train", test_partition: str = "eval") -> Audit:
    """Reads both partitions of an ASVspoof 2019 LA-layout folder and audits every cue."""
    fit_utts, test_utts = load_partition(data_dir, fit_partition), load_partition(data_dir, test_partition)
    return audit_cues(corpus_cues(fit_utts), fit_utts, corpus_cues(test_utts), test_utts)


def format_audit(audit: Audit) -> str:
    """A Markdown table: pooled and worst per-attack folded eval EER of each cue, then the combination."""
    lines = ["| cue | pooled EER % | worst attack EER % |", "|---|---:|---:|"]
    rows = list(audit.cues.items()) + [("**all cues combined**", audit.combined)]
    for name, result in rows:
        worst = result.worst_attack
        lines.append(f"| {name} | {result.pooled:.1f} | {result.per_attack[worst]:.1f} ({worst}) |")
    counts = ", ".join(f"{key} {value}" for key, value in audit.trials.items())
    lines.append(f"\nEval trials: {counts}. EERs folded: min(EER, 100 - EER).")
    return "\n".join(lines)
