"""SynthAV trivial-cue audit: AUC of simple per-clip statistics for each fake category against RVRA, and the
lip-sync oracle (correlation of the mouth region's darkness with the audio envelope), which needs both
streams. AUCs are folded (max(AUC, 1 - AUC)): a cue works in either direction.

    python experiments/synthav_audit.py --data av/ [--split eval]
"""
import argparse

import numpy as np

from darts_jax.data.synthav.corpus import CATEGORIES, REAL, load_split
from darts_jax.spoofing.classification import roc_auc


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--split", default="eval")
    args = parser.parse_args()
    split = load_split(args.data, args.split)
    frames, audio, categories = split.frames_NxTxHxW, split.audio_NxS, split.categories
    mouth = 1 - frames[:, :, 19:29, 9:24].mean(axis=(2, 3))
    spans = np.array_split(audio, frames.shape[1], axis=1)
    envelope = np.log(np.sqrt(np.stack([np.square(s).mean(-1) for s in spans], 1)) + 1e-6)
    cues = {
        "frame mean brightness": frames.mean(axis=(1, 2, 3)),
        "frame contrast (std)": frames.std(axis=(1, 2, 3)),
        "temporal change (mean |frame difference|)": np.abs(np.diff(frames, axis=1)).mean(axis=(1, 2, 3)),
        "audio RMS (dB)": 10 * np.log10(np.mean(audio ** 2, axis=1)),
        "audio peak": np.abs(audio).max(axis=1),
        "audio zero-crossing rate": np.mean(np.abs(np.diff(np.sign(audio), axis=1)) > 0, axis=1),
        "oracle: corr(mouth darkness, audio envelope)": np.array([np.corrcoef(m, e)[0, 1]
                                                                  for m, e in zip(mouth, envelope)]),
    }
    fakes = [c for c in CATEGORIES if c != REAL]
    print(f"| cue ({args.split}, folded AUC vs {REAL}) | " + " | ".join(fakes) + " |")
    print("|---" * (len(fakes) + 1) + "|")
    for name, values in cues.items():
        aucs = [roc_auc(values[categories == REAL], values[categories == c]) for c in fakes]
        print(f"| {name} | " + " | ".join(f"{max(a, 1 - a):.3f}" for a in aucs) + " |")


if __name__ == "__main__":
    main()
