"""Trivial cues of a spoofing corpus: numbers a detector could learn without listening to the speech.

ASVspoof 2019 LA taught that leading/trailing silence alone separates bona fide from spoof; a
synthetic corpus can leak its labels just as easily through a DC offset, a band limit, a limiter's
plateau or the order of its protocol. `file_cues` measures timing, silence, level, DC, band
energies, spectral shape, zero-crossings, peak shape, noise floor and quantisation of one waveform;
`listing_cues` adds what the files and protocol say besides the audio (size, position, mtime rank).
`darts_jax.spoofing.audit` fits classifiers on them. NumPy only.
"""
from __future__ import annotations

import os

import numpy as np

from darts_jax.data.audio import SAMPLE_RATE, load_audio
from darts_jax.data.protocols import Utterance

FILE_CUES = (
    "duration_s", "leading_silence_s", "trailing_silence_s", "active_fraction",
    "rms_dbfs", "peak_dbfs", "crest_factor_db", "active_level_dbfs", "level_range_db",
    "dc_db_re_rms", "below_60hz_db", "below_300hz_db", "band_2k_4k_db", "above_4k_db", "above_7k_db",
    "spectral_tilt_db_per_octave", "spectral_centroid_hz", "rolloff_95_hz", "frame_flatness",
    "long_term_flatness", "zero_crossings_per_s", "active_zero_crossings_per_s",
    "near_peak_fraction", "at_peak_count", "kurtosis", "noise_floor_db_re_rms", "noise_floor_dbfs",
    "noise_floor_above_4k_db", "distinct_values_log2", "zero_sample_fraction", "odd_sample_fraction",
)
LISTING_CUES = ("bytes_per_second", "protocol_position", "mtime_rank", "utt_id_rank")
CUES = FILE_CUES + LISTING_CUES

_LEVEL_FRAME = SAMPLE_RATE // 100  # 10 ms frames for silence, level and noise floor
_SILENT_BELOW_DB = 30.0  # a frame is silent when this far below the file's loudest frame
_FFT = 512
_FFT_HOP = 256
_NEAR_PEAK_DB = 0.5  # a limiter that flattens peaks leaves many samples this close to the maximum
_EPS = 1e-12


def file_cues(wave: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The FILE_CUES of one waveform (float samples in [-1, 1])."""
    wave = np.asarray(wave, np.float64)
    duration = wave.size / sample_rate

    count = max(1, wave.size // _LEVEL_FRAME)
    frame_energy = np.mean(wave[: count * _LEVEL_FRAME].reshape(count, _LEVEL_FRAME) ** 2, axis=1) + _EPS
    energy_db = 10.0 * np.log10(frame_energy)
    active = energy_db > energy_db.max() - _SILENT_BELOW_DB
    loud = np.flatnonzero(active)
    frame_s = _LEVEL_FRAME / sample_rate

    mean_square = np.mean(wave ** 2) + _EPS
    rms_db = 10.0 * np.log10(mean_square)
    peak = np.max(np.abs(wave)) + _EPS
    peak_db = 20.0 * np.log10(peak)
    quiet_threshold = np.percentile(energy_db, 5)

    power, freqs = _frame_power_spectra(wave, sample_rate)
    frame_db = 10.0 * np.log10(power.sum(axis=1) + _EPS)
    active_spectra = power[frame_db > frame_db.max() - _SILENT_BELOW_DB]
    quiet_spectra = power[frame_db <= np.percentile(frame_db, 10)]
    long_term = active_spectra.mean(axis=0) + _EPS
    total = long_term.sum()

    def band_db(low, high, spectrum=long_term):
        in_band = (freqs >= low) & (freqs < high)
        return 10.0 * np.log10(spectrum[in_band].sum() / spectrum.sum() + _EPS)

    octaves = np.log2(freqs[(freqs >= 100) & (freqs <= 7500)])
    tilt = np.polyfit(octaves, 10.0 * np.log10(long_term[(freqs >= 100) & (freqs <= 7500)]), 1)[0]
    cumulative = np.cumsum(long_term) / total
    frame_flatness = np.exp(np.mean(np.log(active_spectra + _EPS), axis=1)) / (active_spectra.mean(axis=1) + _EPS)
    crossings = np.abs(np.diff(np.signbit(wave).astype(np.int8)))
    active_samples = np.repeat(active, _LEVEL_FRAME)[: max(0, wave.size - 1)]
    active_crossings = crossings[: active_samples.size][active_samples]
    centred = wave - wave.mean()
    as_int = np.round(wave * 32768.0).astype(np.int64)

    return np.array([
        duration,
        loud[0] * frame_s,
        (count - 1 - loud[-1]) * frame_s,
        active.mean(),
        rms_db,
        peak_db,
        peak_db - rms_db,
        10.0 * np.log10(frame_energy[active].mean()),
        np.percentile(energy_db[active], 95) - np.percentile(energy_db[active], 5),
        20.0 * np.log10(abs(wave.mean()) + _EPS) - rms_db,
        _low_band_db(wave, sample_rate, 60.0),
        _low_band_db(wave, sample_rate, 300.0),
        band_db(2000, 4000),
        band_db(4000, sample_rate / 2 + 1),
        band_db(7000, sample_rate / 2 + 1),
        tilt,
        np.sum(freqs * long_term) / total,
        freqs[np.searchsorted(cumulative, 0.95)],
        np.mean(frame_flatness),
        np.exp(np.mean(np.log(long_term))) / np.mean(long_term),
        crossings.sum() / duration,
        active_crossings.mean() * sample_rate if active_crossings.size else 0.0,
        np.mean(np.abs(wave) >= peak * 10.0 ** (-_NEAR_PEAK_DB / 20.0)),
        np.sum(np.abs(as_int) == np.abs(as_int).max()),
        np.mean(centred ** 4) / (np.mean(centred ** 2) ** 2 + _EPS),
        quiet_threshold - rms_db,
        quiet_threshold,
        band_db(4000, sample_rate / 2 + 1, quiet_spectra.mean(axis=0) + _EPS),
        np.log2(np.unique(as_int).size),
        np.mean(as_int == 0),
        np.mean(as_int % 2 == 1),
    ])


def _frame_power_spectra(wave: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, bins) Hann-windowed power spectra of 32 ms frames at a 16 ms hop, and the bin frequencies."""
    padded = np.pad(wave, (0, max(0, _FFT - wave.size)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, _FFT)[::_FFT_HOP]
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(_FFT) / _FFT)
    return np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, np.fft.rfftfreq(_FFT, 1.0 / sample_rate)


def _low_band_db(wave: np.ndarray, sample_rate: int, cutoff_hz: float) -> float:
    """Energy below `cutoff_hz` (DC included) relative to the whole file's, from one full-length FFT:
    a 32 ms frame cannot resolve 60 Hz."""
    power = np.abs(np.fft.rfft(wave)) ** 2
    freqs = np.fft.rfftfreq(wave.size, 1.0 / sample_rate)
    return 10.0 * np.log10(power[freqs < cutoff_hz].sum() / (power.sum() + _EPS) + _EPS)


def listing_cues(utterances: list[Utterance]) -> np.ndarray:
    """(utterances, LISTING_CUES): FLAC bytes per second of audio, and the relative ranks (0..1) of the
    protocol line, of the file's modification time and of the utterance id within the partition.

    Needs each file's duration, so it reads every file's header (not its samples)."""
    import soundfile as sf

    count = len(utterances)
    stats = [os.stat(utt.path) for utt in utterances]
    seconds = np.array([sf.info(str(utt.path)).duration for utt in utterances])
    sizes = np.array([stat.st_size for stat in stats], float)
    mtimes = np.array([stat.st_mtime_ns for stat in stats])
    ids = np.array([utt.utt_id for utt in utterances])
    scale = max(1, count - 1)
    return np.stack([sizes / np.maximum(seconds, _EPS), np.arange(count) / scale,
                     _average_ranks(mtimes) / scale, _average_ranks(ids) / scale], axis=1)


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """0-based ranks, ties sharing their mean rank (files written within one clock tick share an mtime)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    _, inverse = np.unique(values, return_inverse=True)
    return np.bincount(inverse, ranks)[inverse] / np.bincount(inverse)[inverse]


def corpus_cues(utterances: list[Utterance]) -> np.ndarray:
    """(utterances, CUES) of whole, untrimmed files."""
    per_file = np.stack([file_cues(load_audio(utt.path)) for utt in utterances])
    return np.concatenate([per_file, listing_cues(utterances)], axis=1)
