"""The recording chain's phase dispersion and microphone equaliser (format 4)."""
import dataclasses

import numpy as np
import pytest
from scipy.signal import sosfilt, sosfreqz

from darts_jax.data.synthspoof.channel import (DISPERSION_COEFFICIENTS, DISPERSION_SECTIONS, MICROPHONE_GAIN_DB,
                                               SAMPLE_RATE, EqBand, apply_channel, dispersion_sos, draw_channel,
                                               eq_sos)


def test_dispersion_is_all_pass_with_the_group_delay_of_its_sections():
    coefficients = draw_channel(np.random.default_rng(3)).dispersion
    sos = dispersion_sos(coefficients)
    _, response = sosfreqz(sos, worN=2048)
    np.testing.assert_allclose(np.abs(response), 1.0, atol=1e-6)

    # Group delay from the impulse response, against the first-order all-pass formula
    # (1 - a^2) / (1 + 2 a cos w + a^2) summed over the sections.
    length = 1 << 14
    impulse = np.zeros(length)
    impulse[0] = 1.0
    h = sosfilt(sos, impulse)
    omega = 2 * np.pi * np.fft.rfftfreq(length)
    measured = np.real(np.fft.rfft(np.arange(length) * h) / np.fft.rfft(h))
    a = np.asarray(coefficients)[:, None]
    expected = np.sum((1 - a ** 2) / (1 + 2 * a * np.cos(omega) + a ** 2), axis=0)
    np.testing.assert_allclose(measured, expected, atol=1e-6)
    # The stated dispersion: 0 Hz delayed by 12 to 28 ms, 8 kHz by under 1.4 ms.
    delay_ms = expected / SAMPLE_RATE * 1e3
    assert 12.0 <= delay_ms[0] <= 28.0 and delay_ms[-1] < 1.4


@pytest.mark.parametrize("gain_db", [-7.0, 5.0])
def test_equaliser_bands_have_their_gains_at_dc_corner_and_nyquist(gain_db):
    corner = 1000.0
    freqs = [0.0, corner, SAMPLE_RATE / 2]

    def gains_db(kind, q):
        _, response = sosfreqz(eq_sos((EqBand(kind, corner, gain_db, q),)), worN=freqs, fs=SAMPLE_RATE)
        return 20 * np.log10(np.abs(response))

    # A shelf reaches its full gain on its side and half of it (in dB) at its corner frequency;
    # a peak has its gain at its centre and none at either end.
    np.testing.assert_allclose(gains_db("low", 1 / np.sqrt(2)), [gain_db, gain_db / 2, 0.0], atol=1e-9)
    np.testing.assert_allclose(gains_db("high", 1 / np.sqrt(2)), [0.0, gain_db / 2, gain_db], atol=1e-9)
    np.testing.assert_allclose(gains_db("peak", 1.3), [0.0, gain_db, 0.0], atol=1e-9)


def test_an_unknown_band_kind_is_refused():
    with pytest.raises(ValueError, match="EqBand.kind: 'notch'"):
        eq_sos((EqBand("notch", 1000.0, 3.0, 1.0),))


def test_dispersion_and_microphone_are_drawn_per_utterance_from_the_channel_generator():
    first, again, other = (draw_channel(np.random.default_rng(seed)) for seed in (8, 8, 9))
    assert first == again
    assert first.dispersion != other.dispersion and first.microphone != other.microphone
    assert len(first.dispersion) == DISPERSION_SECTIONS
    low, high = DISPERSION_COEFFICIENTS
    assert all(low <= a <= high for a in first.dispersion + other.dispersion)
    assert all(abs(band.gain_db) <= MICROPHONE_GAIN_DB for band in first.microphone + other.microphone)


def test_the_equaliser_is_what_tilts_the_recording():
    """Two recordings of one signal through one room, differing only in the microphone: the ratio of their
    spectra is the equaliser's response."""
    rng = np.random.default_rng(0)
    channel = dataclasses.replace(draw_channel(rng), snr_db=300.0, hum_hz=0.0, lead_samples=4000,
                                  trail_samples=12000, rms_dbfs=-30.0)
    speech = rng.standard_normal(channel.speech_samples)
    flat = dataclasses.replace(channel, microphone=())
    bright = dataclasses.replace(channel, microphone=(EqBand("high", 3000.0, 6.0, 1 / np.sqrt(2)),))
    # The same generator state for both, so the room and the noise are the same draws.
    waves = [apply_channel(speech, c, np.random.default_rng(1)) for c in (flat, bright)]
    spectra = [np.abs(np.fft.rfft(w)) for w in waves]
    freqs = np.fft.rfftfreq(waves[0].size, 1 / SAMPLE_RATE)
    _, response = sosfreqz(eq_sos(bright.microphone), worN=freqs, fs=SAMPLE_RATE)
    band = (freqs > 200) & (freqs < 7800)
    # Both are levelled to one RMS, so the ratio holds up to one overall gain.
    ratio_db = 20 * np.log10(spectra[1][band] / spectra[0][band]) - 20 * np.log10(np.abs(response[band]))
    np.testing.assert_allclose(ratio_db - np.median(ratio_db), 0.0, atol=1e-6)
