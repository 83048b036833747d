"""The LFCC-GMM baseline (ASVspoof's B2, smaller): is a corpus neither trivial nor hopeless, and does a
searched network beat the classic front end with the classic back end?

One diagonal-covariance GMM per class on the 60-dim LFCC frames of the training partition (the model's
own front end, first `num_samples` of each file, repeat-padded as the loaders do); an utterance's score
is its mean frame log-likelihood ratio, bona fide over spoof. Written here rather than taken from
scikit-learn, which is not among the dependencies; the EM is the textbook one.
"""
from __future__ import annotations

import dataclasses

import jax
import numpy as np

from darts_jax.data.loader import BatchLoader
from darts_jax.data.protocols import load_partition
from darts_jax.nn.frontends import lfcc
from darts_jax.spoofing.metrics import evaluate_scores
from darts_jax.spoofing.scores import utterance_scores

_lfcc = jax.jit(lfcc)


@dataclasses.dataclass(frozen=True)
class GmmConfig:
    components: int = 64
    iterations: int = 20
    frames_per_class: int = 100_000  # training frames drawn per class
    num_samples: int = 64000  # audio per utterance, as the model's loaders read it
    seed: int = 0


def lfcc_frames(utterances, batch_size: int = 64, num_samples: int = 64000) -> np.ndarray:
    """(utterances, frames, 60) float32 LFCCs of the first `num_samples` of each utterance."""
    loader = BatchLoader(utterances, batch_size, shuffle=False, drop_last=False, num_samples=num_samples)
    return np.concatenate([np.asarray(_lfcc(batch.wave_BxS))[batch.valid_B] for batch in loader.one_pass()])


class DiagonalGmm:
    """Gaussian mixture with diagonal covariances, fitted by EM from randomly chosen initial means."""

    def __init__(self, frames_NxD: np.ndarray, components: int, iterations: int, rng: np.random.Generator):
        frames_NxD = frames_NxD.astype(np.float64)
        self.means_KxD = frames_NxD[rng.choice(len(frames_NxD), components, replace=False)]
        self.vars_KxD = np.tile(frames_NxD.var(axis=0), (components, 1))
        self.log_weights_K = np.full(components, -np.log(components))
        # A variance floor keeps a component that collapses onto a few frames from dominating the scores.
        floor = 1e-3 * frames_NxD.var(axis=0)
        for _ in range(iterations):
            per_component_NxK = self.component_log_likelihoods(frames_NxD)
            resp_NxK = np.exp(per_component_NxK - _log_sum_exp(per_component_NxK)[:, None])
            counts_K = resp_NxK.sum(axis=0) + 1e-9
            self.means_KxD = resp_NxK.T @ frames_NxD / counts_K[:, None]
            self.vars_KxD = np.maximum(resp_NxK.T @ frames_NxD ** 2 / counts_K[:, None] - self.means_KxD ** 2, floor)
            self.log_weights_K = np.log(counts_K / counts_K.sum())

    def component_log_likelihoods(self, frames_NxD: np.ndarray) -> np.ndarray:
        """(N, K): log weight + log density of each frame under each component."""
        precision_KxD = 1.0 / self.vars_KxD
        quadratic_NxK = (frames_NxD ** 2 @ precision_KxD.T - 2 * frames_NxD @ (self.means_KxD * precision_KxD).T
                         + np.sum(self.means_KxD ** 2 * precision_KxD, axis=1))
        log_norm_K = -0.5 * np.sum(np.log(2 * np.pi * self.vars_KxD), axis=1)
        return self.log_weights_K + log_norm_K - 0.5 * quadratic_NxK

    def log_likelihood(self, frames_NxD: np.ndarray) -> np.ndarray:
        return _log_sum_exp(self.component_log_likelihoods(frames_NxD))


def _log_sum_exp(per_component_NxK: np.ndarray) -> np.ndarray:
    peak = per_component_NxK.max(axis=1, keepdims=True)
    return (peak + np.log(np.exp(per_component_NxK - peak).sum(axis=1, keepdims=True)))[:, 0]


def gmm_scores(bona_gmm: DiagonalGmm, spoof_gmm: DiagonalGmm, feats_UxTxD: np.ndarray) -> np.ndarray:
    """Per utterance, the mean over its frames of log p(frame | bona fide) - log p(frame | spoof)."""
    frames = feats_UxTxD.reshape(-1, feats_UxTxD.shape[-1]).astype(np.float64)
    ratio = bona_gmm.log_likelihood(frames) - spoof_gmm.log_likelihood(frames)
    return ratio.reshape(feats_UxTxD.shape[:2]).mean(axis=1)


def fit_lfcc_gmms(train_feats_UxTxD: np.ndarray, train_labels_U: np.ndarray,
                  config: GmmConfig = GmmConfig()) -> tuple[DiagonalGmm, DiagonalGmm]:
    """(bona fide GMM, spoof GMM), each on up to `frames_per_class` frames drawn from its class."""
    rng = np.random.default_rng(config.seed)

    def training_frames(label):
        frames = train_feats_UxTxD[train_labels_U == label].reshape(-1, train_feats_UxTxD.shape[-1])
        if len(frames) < config.components:
            raise ValueError(f"LFCC-GMM: {len(frames)} training frames of label {label}, fewer than the "
                             f"{config.components} components; use a larger corpus or fewer components")
        return frames[rng.choice(len(frames), min(len(frames), config.frames_per_class), replace=False)]

    bona, spoof = (DiagonalGmm(training_frames(label), config.components, config.iterations, rng) for label in (1, 0))
    return bona, spoof


def lfcc_gmm_baseline(data_dir, partitions=("dev", "eval"), config: GmmConfig = GmmConfig(),
                      batch_size: int = 64) -> dict[str, dict]:
    """{partition: `evaluate_scores` (EER pooled and per attack)} of the LFCC-GMM fitted on `data_dir`'s
    train partition (ASVspoof 2019 LA layout)."""
    train = load_partition(data_dir, "train")
    bona, spoof = fit_lfcc_gmms(lfcc_frames(train, batch_size, config.num_samples),
                                np.array([u.label for u in train]), config)
    reports = {}
    for name in partitions:
        utterances = load_partition(data_dir, name)
        scores = gmm_scores(bona, spoof, lfcc_frames(utterances, batch_size, config.num_samples))
        reports[name] = evaluate_scores(utterance_scores(utterances, scores))
    return reports


def baseline_section(metrics: dict, gmm_eval: dict, config: GmmConfig = GmmConfig()) -> list[str]:
    """The report's section: the detector's eval EER beside the LFCC-GMM's on the same trials (both
    `evaluate_scores` results)."""
    pooled = metrics["eer_percent"]
    verdict = "below" if pooled < gmm_eval["eer_percent"] else "not below"
    lines = ["## Against the LFCC-GMM baseline", "",
             "EER (%) on the same eval trials of this model and of an LFCC-GMM (ASVspoof's classic baseline: "
             f"one {config.components}-component diagonal GMM per class on the training partition's LFCC frames, "
             f"first {config.num_samples} samples of each file; `darts_jax.spoofing.baselines`). "
             f"The model's pooled EER is {verdict} the GMM's.", "",
             "| trials | this model | LFCC-GMM |", "|---|---|---|",
             f"| pooled | {pooled:.2f} | {gmm_eval['eer_percent']:.2f} |"]
    lines += [f"| {attack} | {row['eer_percent']:.2f} | {gmm_eval['per_attack'][attack]['eer_percent']:.2f} |"
              for attack, row in metrics["per_attack"].items()]
    return lines + [""]
