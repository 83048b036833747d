"""Trivial cues measured on signals whose answers are known."""
import os

import numpy as np
import pytest
import soundfile as sf

from darts_jax.data.cues import FILE_CUES, file_cues, listing_cues
from darts_jax.data.protocols import Utterance


def _cue(wave, name):
    return file_cues(wave)[FILE_CUES.index(name)]


def test_timing_level_dc_and_bands_of_a_tone():
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    tone = 0.1 * np.sin(2 * np.pi * 1000 * t) + 0.01
    wave = np.concatenate([np.zeros(8000), tone, np.zeros(4800)]) + 1e-5 * rng.standard_normal(28800)
    assert _cue(wave, "duration_s") == pytest.approx(1.8)
    assert _cue(wave, "leading_silence_s") == pytest.approx(0.5, abs=0.011)
    assert _cue(wave, "trailing_silence_s") == pytest.approx(0.3, abs=0.011)
    assert _cue(wave, "active_fraction") == pytest.approx(1.0 / 1.8, abs=0.01)
    rms = np.sqrt(np.mean(wave ** 2))
    assert _cue(wave, "rms_dbfs") == pytest.approx(20 * np.log10(rms), abs=1e-6)
    assert _cue(wave, "dc_db_re_rms") == pytest.approx(20 * np.log10(abs(wave.mean()) / rms), abs=0.01)
    assert _cue(wave, "above_4k_db") < -40.0
    assert _cue(wave, "spectral_centroid_hz") == pytest.approx(1000.0, abs=60.0)
    assert _cue(wave, "active_zero_crossings_per_s") == pytest.approx(2000.0, rel=0.02)
    high = 0.1 * np.sin(2 * np.pi * 7500 * t)
    assert _cue(high, "above_7k_db") > -0.5 and _cue(high, "below_300hz_db") < -40.0


def test_peak_shape_and_quantisation():
    rng = np.random.default_rng(1)
    speechlike = rng.laplace(0.0, 0.05, 32000)
    limited = np.clip(speechlike, -0.1, 0.1)  # a hard limiter's plateau
    assert _cue(speechlike, "near_peak_fraction") < 0.001
    assert _cue(limited, "near_peak_fraction") == pytest.approx(np.mean(np.abs(speechlike) >= 0.1 * 10 ** (-0.5 / 20)),
                                                               abs=1e-3)
    assert _cue(limited, "at_peak_count") > 1000
    assert _cue(speechlike, "kurtosis") == pytest.approx(6.0, rel=0.2)  # Laplace: 6
    coarse = np.round(speechlike * 256) / 256  # steps of 1/256: at most 2 * 256 * max|x| + 1 values
    assert _cue(coarse, "distinct_values_log2") <= np.log2(2 * 256 * np.abs(coarse).max() + 1)
    assert _cue(speechlike, "distinct_values_log2") > 13.0  # 16-bit steps: most of 32000 samples differ
    assert _cue(coarse, "odd_sample_fraction") == 0.0
    assert _cue(speechlike, "odd_sample_fraction") == pytest.approx(0.5, abs=0.02)


def test_listing_cues_rank_mtimes_and_ids(tmp_path):
    utterances = []
    for index, (utt_id, mtime) in enumerate([("LA_3", 30), ("LA_1", 10), ("LA_2", 10), ("LA_0", 40)]):
        path = tmp_path / f"{utt_id}.flac"
        sf.write(path, np.zeros(16000 * (index + 1)) + 0.01, 16000, format="FLAC", subtype="PCM_16")
        os.utime(path, ns=(mtime * 10 ** 9, mtime * 10 ** 9))
        utterances.append(Utterance(utt_id, "S", "-", 1, path))
    cues = listing_cues(utterances)
    sizes = [u.path.stat().st_size / (i + 1) for i, u in enumerate(utterances)]
    np.testing.assert_allclose(cues[:, 0], sizes)
    np.testing.assert_allclose(cues[:, 1], [0, 1 / 3, 2 / 3, 1])
    np.testing.assert_allclose(cues[:, 2], [2 / 3, 0.5 / 3, 0.5 / 3, 1])  # the two tied mtimes share rank 0.5
    np.testing.assert_allclose(cues[:, 3], [1, 1 / 3, 2 / 3, 0])
