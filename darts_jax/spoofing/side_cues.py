"""Side cues of a spoofing corpus: what a detector could learn without looking at the speech.

ASVspoof 2019 LA taught that leading/trailing silence alone separates bona fide from spoof; this
module measures duration, RMS and peak level and silence lengths per file and fits a logistic
regression on them, so a corpus can be checked for such shortcuts (SynthSpoof must have none).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from darts_jax.data.audio import SAMPLE_RATE, load_audio
from darts_jax.data.protocols import Utterance, load_partition
from darts_jax.spoofing.metrics import compute_eer

SIDE_CUES = ("duration_s", "rms_dbfs", "peak_dbfs", "leading_silence_s", "trailing_silence_s")
_FRAME_S = 0.010
_SILENCE_BELOW_DB = 30.0  # a frame is silent when this far below the file's loudest frame


def side_cue_features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The SIDE_CUES of one waveform."""
    frame = int(_FRAME_S * sample_rate)
    count = max(1, wave.size // frame)
    energy_db = 10.0 * np.log10(np.mean(wave[: count * frame].reshape(count, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy_db > energy_db.max() - _SILENCE_BELOW_DB)
    return np.array([
        wave.size / sample_rate,
        10.0 * np.log10(np.mean(wave ** 2) + 1e-12),
        20.0 * np.log10(np.max(np.abs(wave)) + 1e-12),
        loud[0] * _FRAME_S,
        (count - 1 - loud[-1]) * _FRAME_S,
    ])


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


def corpus_side_cues(utterances: list[Utterance]) -> np.ndarray:
    """(utterances, SIDE_CUES) of whole files, untrimmed."""
    return np.stack([side_cue_features(load_audio(utt.path)) for utt in utterances])


def side_cue_eer(data_dir: str | Path, fit_partition: str = "train", test_partition: str = "eval") -> float:
    """EER (fraction) of a side-cue logistic regression fitted on one partition and scored on another."""
    fit_utts, test_utts = load_partition(data_dir, fit_partition), load_partition(data_dir, test_partition)
    model = LogisticRegression.fit(corpus_side_cues(fit_utts), np.array([u.label for u in fit_utts]))
    scores = model.score(corpus_side_cues(test_utts))
    labels = np.array([u.label for u in test_utts])
    return compute_eer(scores[labels == 1], scores[labels == 0])[0]
