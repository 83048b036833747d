"""The silence audit: how much of a result leading and trailing non-speech explains.

ASVspoof 2019 LA's bona fide and spoofed files differ in their silences: silence alone gives about 15 %
EER there (Müller et al., Interspeech 2021), and the PC-DARTS authors found their detector leans on it.
This module scores a corpus both ways (with and without the silences, the energy detector of
darts_jax.data.audio.speech_bounds) and fits a silence-only baseline: a logistic regression on the
leading and trailing non-speech durations, fitted on train and scored on the test partition.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from darts_jax.data.audio import load_audio, speech_bounds
from darts_jax.data.protocols import Utterance, load_partition
from darts_jax.spoofing.audit import LogisticRegression
from darts_jax.spoofing.metrics import evaluate_scores
from darts_jax.spoofing.scores import utterance_scores


def silence_durations(utterances: list[Utterance], sample_rate: int = 16000, workers: int = 4) -> np.ndarray:
    """(N, 2) seconds of leading and trailing non-speech of each utterance."""
    def durations(utt: Utterance):
        wave = load_audio(utt.path, sample_rate)
        start, stop = speech_bounds(wave, sample_rate)
        return start / sample_rate, (wave.size - stop) / sample_rate

    with ThreadPoolExecutor(workers) as pool:
        return np.array(list(pool.map(durations, utterances)), np.float64)


def silence_only_baseline(data_dir: str | Path, fit_partition: str = "train", test_partition: str = "eval") -> dict:
    """`evaluate_scores` of the silence-only classifier on `test_partition` (pooled and per attack)."""
    fit, test = load_partition(data_dir, fit_partition), load_partition(data_dir, test_partition)
    model = LogisticRegression.fit(silence_durations(fit), np.array([u.label for u in fit]))
    scores = model.score(silence_durations(test))
    return evaluate_scores(utterance_scores(test, scores))


def silence_section(with_silence: dict, without_silence: dict, baseline: dict) -> list[str]:
    """The report's section: pooled and per-attack EER with and without the silences, and the baseline."""
    lines = ["## With and without leading/trailing silence", "",
             "EER (%) of the same model on the same files, scored whole and with their leading and trailing "
             "non-speech removed (energy detector, 35 dB below the loudest 20 ms frame, 30 ms kept), beside a "
             "classifier that sees nothing but the two silence durations. A detector whose EER rises much "
             "when the silences go, or that the silence-only classifier approaches, leans on silence.", "",
             "| trials | with silence | without silence | silence only |", "|---|---|---|---|",
             f"| pooled | {with_silence['eer_percent']:.2f} | {without_silence['eer_percent']:.2f} | "
             f"{baseline['eer_percent']:.2f} |"]
    for attack, row in with_silence["per_attack"].items():
        lines.append(f"| {attack} | {row['eer_percent']:.2f} | "
                     f"{without_silence['per_attack'][attack]['eer_percent']:.2f} | "
                     f"{baseline['per_attack'][attack]['eer_percent']:.2f} |")
    return lines + [""]
