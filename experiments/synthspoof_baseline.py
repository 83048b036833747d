"""Simple baselines on a SynthSpoof (or ASVspoof 2019 LA) folder: is the task neither trivial nor hopeless?

All use the 60-dim LFCCs of the model's input (first 4 s, repeat-padded), fitted on train and scored
on dev and eval (EER pooled and per attack, percent):
1. LFCC-GMM (`darts_jax.spoofing.baselines`, the one the demo's report shows), as the ASVspoof baseline
   B2 but smaller: one diagonal GMM per class on the frames, the score is the mean frame log-likelihood ratio.
2. Logistic regression on the utterance mean (and standard deviation) of each LFCC dimension.
3. Trivial cues: the combined classifier of the cue audit (`darts-jax audit-data`; level, silence, DC,
   band energies, order...), which should stay near 50 %.

Usage: python experiments/synthspoof_baseline.py --data DIR
"""
from __future__ import annotations

import argparse

import numpy as np

from darts_jax.data.protocols import load_partition
from darts_jax.spoofing.audit import LogisticRegression, audit_corpus
from darts_jax.spoofing.baselines import GmmConfig, fit_lfcc_gmms, gmm_scores, lfcc_frames
from darts_jax.spoofing.metrics import evaluate_scores
from darts_jax.spoofing.scores import utterance_scores


def print_report(title: str, partition: str, scores, utterances) -> None:
    metrics = evaluate_scores(utterance_scores(utterances, scores))
    cells = "  ".join([f"pooled {metrics['eer_percent']:5.1f}"] + [f"{attack} {row['eer_percent']:5.1f}"
                                                                  for attack, row in metrics["per_attack"].items()])
    print(f"{title:14s} {partition:4s} EER %: {cells}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--gmm-components", type=int, default=GmmConfig.components)
    parser.add_argument("--gmm-frames", type=int, default=GmmConfig.frames_per_class, help="training frames per class")
    args = parser.parse_args()

    config = GmmConfig(components=args.gmm_components, frames_per_class=args.gmm_frames)
    partitions = {name: load_partition(args.data, name) for name in ("train", "dev", "eval")}
    feats = {name: lfcc_frames(utts, args.batch_size, config.num_samples) for name, utts in partitions.items()}
    train_labels = np.array([u.label for u in partitions["train"]])
    bona_gmm, spoof_gmm = fit_lfcc_gmms(feats["train"], train_labels, config)
    for name in ("dev", "eval"):
        print_report("LFCC-GMM", name, gmm_scores(bona_gmm, spoof_gmm, feats[name]), partitions[name])

    stats = {name: np.concatenate([f.mean(axis=1), f.std(axis=1)], axis=1) for name, f in feats.items()}
    for title, columns in (("mean LFCC LR", slice(0, 60)), ("mean+std LR", slice(0, 120))):
        model = LogisticRegression.fit(stats["train"][:, columns], train_labels)
        for name in ("dev", "eval"):
            print_report(title, name, model.score(stats[name][:, columns]), partitions[name])
    print(f"trivial cues   eval EER %: pooled {audit_corpus(args.data).combined.pooled:5.1f} (folded)")


if __name__ == "__main__":
    main()
