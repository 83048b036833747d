"""Simple baselines on a SynthSpoof (or ASVspoof 2019 LA) folder: is the task neither trivial nor hopeless?

All use the 60-dim LFCCs of the model's input (first 4 s, repeat-padded), fitted on train and scored
on dev and eval (EER pooled and per attack, percent):
1. LFCC-GMM, as the ASVspoof baseline B2 but smaller: one diagonal GMM per class on the frames,
   the score is the mean frame log-likelihood ratio.
2. Logistic regression on the utterance mean (and standard deviation) of each LFCC dimension.
3. Trivial cues: the combined classifier of the cue audit (`darts-jax audit-data`; level, silence, DC,
   band energies, order...), which should stay near 50 %.

Usage: python experiments/synthspoof_baseline.py --data DIR
"""
from __future__ import annotations

import argparse

import jax
import numpy as np

from darts_jax.data.loader import BatchLoader
from darts_jax.data.protocols import load_partition
from darts_jax.nn.frontends import lfcc
from darts_jax.spoofing.metrics import compute_eer
from darts_jax.spoofing.audit import LogisticRegression, audit_corpus

_lfcc = jax.jit(lfcc)


def lfcc_frames(utterances, batch_size: int) -> np.ndarray:
    """(utterances, frames, 60) float32 LFCCs of the first 4 s of each utterance."""
    loader = BatchLoader(utterances, batch_size, shuffle=False, drop_last=False)
    return np.concatenate([np.asarray(_lfcc(batch.wave_BxS))[batch.valid_B] for batch in loader.one_pass()])


class DiagonalGmm:
    """Gaussian mixture with diagonal covariances, fitted by EM from randomly chosen frames."""

    def __init__(self, frames_NxD: np.ndarray, components: int, iterations: int, rng: np.random.Generator):
        frames_NxD = frames_NxD.astype(np.float64)
        self.means_KxD = frames_NxD[rng.choice(len(frames_NxD), components, replace=False)]
        self.vars_KxD = np.tile(frames_NxD.var(axis=0), (components, 1))
        self.log_weights_K = np.full(components, -np.log(components))
        floor = 1e-3 * frames_NxD.var(axis=0)
        for _ in range(iterations):
            resp_NxK = np.exp(self._component_log_likelihoods(frames_NxD) - self.log_likelihood(frames_NxD)[:, None])
            counts_K = resp_NxK.sum(axis=0) + 1e-9
            self.means_KxD = resp_NxK.T @ frames_NxD / counts_K[:, None]
            self.vars_KxD = np.maximum(resp_NxK.T @ frames_NxD ** 2 / counts_K[:, None] - self.means_KxD ** 2, floor)
            self.log_weights_K = np.log(counts_K / counts_K.sum())

    def _component_log_likelihoods(self, frames_NxD: np.ndarray) -> np.ndarray:
        precision_KxD = 1.0 / self.vars_KxD
        quadratic_NxK = (frames_NxD ** 2 @ precision_KxD.T - 2 * frames_NxD @ (self.means_KxD * precision_KxD).T
                         + np.sum(self.means_KxD ** 2 * precision_KxD, axis=1))
        log_norm_K = -0.5 * np.sum(np.log(2 * np.pi * self.vars_KxD), axis=1)
        return self.log_weights_K + log_norm_K - 0.5 * quadratic_NxK

    def log_likelihood(self, frames_NxD: np.ndarray) -> np.ndarray:
        per_component = self._component_log_likelihoods(frames_NxD)
        peak = per_component.max(axis=1, keepdims=True)
        return (peak + np.log(np.exp(per_component - peak).sum(axis=1, keepdims=True)))[:, 0]


def gmm_scores(bona_gmm: DiagonalGmm, spoof_gmm: DiagonalGmm, feats_UxTxD: np.ndarray) -> np.ndarray:
    frames = feats_UxTxD.reshape(-1, feats_UxTxD.shape[-1]).astype(np.float64)
    ratio = bona_gmm.log_likelihood(frames) - spoof_gmm.log_likelihood(frames)
    return ratio.reshape(feats_UxTxD.shape[:2]).mean(axis=1)


def print_report(title: str, partition: str, report: dict[str, float]) -> None:
    cells = "  ".join(f"{key} {value:5.1f}" for key, value in report.items())
    print(f"{title:14s} {partition:4s} EER %: {cells}", flush=True)


def eer_report(scores: np.ndarray, utterances) -> dict[str, float]:
    """Pooled EER and one EER per attack (its spoofs against all bona fide trials), in percent."""
    labels = np.array([u.label for u in utterances])
    attacks = np.array([u.attack for u in utterances])
    bona = scores[labels == 1]
    report = {"pooled": 100 * compute_eer(bona, scores[labels == 0])[0]}
    for attack in sorted(set(attacks[labels == 0])):
        report[attack] = 100 * compute_eer(bona, scores[attacks == attack])[0]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gmm-components", type=int, default=64)
    parser.add_argument("--gmm-frames", type=int, default=100_000, help="training frames per class")
    args = parser.parse_args()

    partitions = {name: load_partition(args.data, name) for name in ("train", "dev", "eval")}
    feats = {name: lfcc_frames(utts, args.batch_size) for name, utts in partitions.items()}
    train_labels = np.array([u.label for u in partitions["train"]])
    rng = np.random.default_rng(0)

    def training_frames(label):
        frames = feats["train"][train_labels == label].reshape(-1, feats["train"].shape[-1])
        return frames[rng.choice(len(frames), min(len(frames), args.gmm_frames), replace=False)]

    bona_gmm, spoof_gmm = (DiagonalGmm(training_frames(label), args.gmm_components, 20, rng) for label in (1, 0))
    for name in ("dev", "eval"):
        print_report("LFCC-GMM", name, eer_report(gmm_scores(bona_gmm, spoof_gmm, feats[name]), partitions[name]))

    stats = {name: np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1) for name, f in feats.items()}
    for title, columns in (("mean LFCC LR", slice(0, 60)), ("mean+std LR", slice(0, 120))):
        model = LogisticRegression.fit(stats["train"][:, columns], train_labels)
        for name in ("dev", "eval"):
            print_report(title, name, eer_report(model.score(stats[name][:, columns]), partitions[name]))
    print(f"trivial cues   eval EER %: pooled {audit_corpus(args.data).combined.pooled:5.1f} (folded)")


if __name__ == "__main__":
    main()
