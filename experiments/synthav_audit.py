"""SynthAV trivial-cue audit: AUC of simple per-clip statistics for each fake category against RVRA, and the
lip-sync oracle (correlation of the mouth region's darkness with the audio envelope), which needs both
streams. AUCs are folded (max(AUC, 1 - AUC)): a cue works in either direction.

With `--probe video_tap,audio_tap` (e.g. v1,a1) it also asks whether the frozen backbones' cached taps keep
the synchrony: a ridge probe per stream, fitted on train's RVRA clips to the mouth darkness and to the audio
envelope of each position, then the per-clip correlation of the two probes, AUC of RVRA against LS.

    python experiments/synthav_audit.py --data av/ [--split eval] [--probe v1,a1]
"""
import argparse

import numpy as np

from darts_jax.data.synthav.corpus import CATEGORIES, REAL, load_split
from darts_jax.data.synthav.features import features_path, load_features, tap_columns
from darts_jax.spoofing.classification import roc_auc


def mouth_darkness(split):
    return 1 - split.frames_NxTxHxW[:, :, 19:29, 9:24].mean(axis=(2, 3))


def audio_envelope(split):
    spans = np.array_split(split.audio_NxS, split.frames_NxTxHxW.shape[1], axis=1)
    return np.log(np.sqrt(np.stack([np.square(s).mean(-1) for s in spans], 1)) + 1e-6)


def row_correlation(a_NxT, b_NxT):
    a, b = a_NxT - a_NxT.mean(1, keepdims=True), b_NxT - b_NxT.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)


def probe_audit(data, taps, split_name, ridge=10.0):
    """Per-clip correlation of the video tap's mouth probe with the audio tap's envelope probe."""
    meta, features = load_features(features_path(data))
    train, split = load_split(data, "train"), load_split(data, split_name)
    real = train.categories == REAL
    probes = []
    for tap, target in zip(taps, (mouth_darkness, audio_envelope)):
        columns = tap_columns(meta, [tap])
        x = features["train"]["features"][real][..., columns].reshape(-1, len(columns))
        y = target(train)[real].reshape(-1)
        mean, std = x.mean(0), x.std(0) + 1e-6
        z = (x - mean) / std
        weights = np.linalg.solve(z.T @ z + ridge * np.eye(len(columns)), z.T @ (y - y.mean()))
        probes.append(((features[split_name]["features"][..., columns] - mean) / std) @ weights)
    sync = row_correlation(*probes)
    return roc_auc(sync[split.categories == REAL], sync[split.categories == "LS"])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="eval")
    parser.add_argument("--probe", help="a video and an audio tap of the feature cache, e.g. v1,a1")
    args = parser.parse_args()
    split = load_split(args.data, args.split)
    frames, audio, categories = split.frames_NxTxHxW, split.audio_NxS, split.categories
    cues = {
        "frame mean brightness": frames.mean(axis=(1, 2, 3)),
        "frame contrast (std)": frames.std(axis=(1, 2, 3)),
        "temporal change (mean |frame difference|)": np.abs(np.diff(frames, axis=1)).mean(axis=(1, 2, 3)),
        "audio RMS (dB)": 10 * np.log10(np.mean(audio ** 2, axis=1)),
        "audio peak": np.abs(audio).max(axis=1),
        "audio zero-crossing rate": np.mean(np.abs(np.diff(np.sign(audio), axis=1)) > 0, axis=1),
        "oracle: corr(mouth darkness, audio envelope)": row_correlation(mouth_darkness(split), audio_envelope(split)),
    }
    fakes = [c for c in CATEGORIES if c != REAL]
    print(f"| cue ({args.split}, folded AUC vs {REAL}) | " + " | ".join(fakes) + " |")
    print("|---" * (len(fakes) + 1) + "|")
    for name, values in cues.items():
        aucs = [roc_auc(values[categories == REAL], values[categories == c]) for c in fakes]
        print(f"| {name} | " + " | ".join(f"{max(a, 1 - a):.3f}" for a in aucs) + " |")
    if args.probe:
        taps = tuple(t.strip() for t in args.probe.split(","))
        print(f"taps {'+'.join(taps)}: {args.split} AUC of RVRA against LS of the probes' correlation "
              f"{probe_audit(args.data, taps, args.split):.3f} (probes fitted on train's RVRA clips)")


if __name__ == "__main__":
    main()
