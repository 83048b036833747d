"""The recording chain SynthSpoof puts every utterance through, bona fide and spoof alike.

Room reverberation, background noise, leading/trailing silence and the final level are drawn from
one distribution whatever the class, so duration, RMS, peak level and silence carry no label: a
detector has to find the attacks' own traces.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.fft import next_fast_len
from scipy.ndimage import maximum_filter1d
from scipy.signal import fftconvolve

from darts_jax.data.synthspoof.spectral import SAMPLE_RATE, moving_average

_LIMITER_WINDOW = 33  # samples (2 ms) over which the limiter's gain may move


@dataclasses.dataclass(frozen=True)
class Channel:
    speech_samples: int
    lead_samples: int
    trail_samples: int
    rt60_s: float
    direct_to_reverb_db: float
    snr_db: float
    noise_slope: float  # 0 white, 1 pink, 2 brown
    hum_hz: float  # 0: no mains hum
    rms_dbfs: float
    peak_dbfs: float


def draw_channel(rng: np.random.Generator) -> Channel:
    """Durations, room, noise and level of one utterance."""
    speech_s = float(np.clip(rng.lognormal(np.log(2.4), 0.35), 1.0, 6.0))
    rms_dbfs = float(rng.uniform(-30.0, -20.0))
    return Channel(
        speech_samples=int(speech_s * SAMPLE_RATE),
        lead_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        trail_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        rt60_s=float(rng.uniform(0.1, 0.3)),
        direct_to_reverb_db=float(rng.uniform(10.0, 20.0)),
        snr_db=float(rng.uniform(30.0, 50.0)),
        noise_slope=float(rng.uniform(0.5, 1.5)),
        hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < 0.15 else 0.0,
        rms_dbfs=rms_dbfs,
        # The limiter always acts (speech crest factors exceed this range), so peaks are set, not measured.
        peak_dbfs=rms_dbfs + float(rng.uniform(11.0, 14.0)),
    )


def room_impulse_response(channel: Channel, rng: np.random.Generator) -> np.ndarray:
    """Direct path, a few early reflections and an exponentially decaying, darkening diffuse tail."""
    length = int(min(1.2 * channel.rt60_s, 0.7) * SAMPLE_RATE)
    t = np.arange(length) / SAMPLE_RATE
    tail = rng.standard_normal(length) * 10.0 ** (-3.0 * t / channel.rt60_s)
    tail = moving_average(tail, 3)
    tail[: int(0.004 * SAMPLE_RATE)] = 0.0
    for _ in range(rng.integers(3, 7)):
        tail[int(rng.uniform(0.002, 0.02) * SAMPLE_RATE)] += rng.uniform(-1.0, 1.0)
    tail *= 10.0 ** (-channel.direct_to_reverb_db / 20.0) / np.sqrt(np.sum(tail ** 2))
    tail[0] = 1.0
    return tail


def background_noise(num_samples: int, channel: Channel, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS noise with a 1/f^slope power spectrum, plus mains hum when the channel has it."""
    fast_length = next_fast_len(num_samples, real=True)
    spectrum = np.fft.rfft(rng.standard_normal(fast_length))
    freqs = np.fft.rfftfreq(fast_length, 1.0 / SAMPLE_RATE)
    spectrum *= np.maximum(freqs, 20.0) ** (-channel.noise_slope / 2.0)
    noise = np.fft.irfft(spectrum, n=fast_length)[:num_samples]
    noise /= np.sqrt(np.mean(noise ** 2))
    if channel.hum_hz:
        t = np.arange(num_samples) / SAMPLE_RATE
        hum = sum(np.sin(2 * np.pi * k * channel.hum_hz * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
        noise += rng.uniform(0.3, 1.0) * hum
    return noise


def apply_channel(speech: np.ndarray, channel: Channel, rng: np.random.Generator) -> np.ndarray:
    """Silence-padded, reverberant, noisy speech at the channel's RMS and peak levels (float, in [-1, 1])."""
    if speech.size != channel.speech_samples:
        raise ValueError(f"speech has {speech.size} samples, the channel expects {channel.speech_samples}")
    total = channel.lead_samples + speech.size + channel.trail_samples
    padded = np.zeros(total)
    padded[channel.lead_samples:channel.lead_samples + speech.size] = speech
    wet = fftconvolve(padded, room_impulse_response(channel, rng))[:total]
    speech_rms = np.sqrt(np.mean(wet[channel.lead_samples:channel.lead_samples + speech.size] ** 2))
    noisy = wet + background_noise(total, channel, rng) * speech_rms * 10.0 ** (-channel.snr_db / 20.0)
    return set_level(noisy, channel.rms_dbfs, channel.peak_dbfs)


def set_level(wave: np.ndarray, rms_dbfs: float, peak_dbfs: float) -> np.ndarray:
    """Exactly `rms_dbfs` RMS, with the peaks limited to `peak_dbfs` (to within a few hundredths of a dB).

    Limiting lowers the RMS, and the make-up gain then lifts the peaks by as much; the ceiling c (dB)
    must therefore solve c + rms_dbfs - rms(limited at c) = peak_dbfs, found by the secant method.
    """
    def rms_db(x):
        return 10.0 * np.log10(np.mean(x ** 2))

    def limited(ceiling_db):
        return limit_peaks(wave, 10.0 ** (ceiling_db / 20.0))

    def excess(ceiling_db):
        return ceiling_db + rms_dbfs - rms_db(limited(ceiling_db)) - peak_dbfs

    wave = wave * 10.0 ** ((rms_dbfs - rms_db(wave)) / 20.0)
    previous, previous_excess = peak_dbfs, excess(peak_dbfs)
    current = previous - previous_excess
    for _ in range(4):
        current_excess = excess(current)
        if abs(current_excess) < 0.01 or current_excess == previous_excess:
            break
        previous, current, previous_excess = (
            current, current - current_excess * (current - previous) / (current_excess - previous_excess),
            current_excess)
    out = limited(current)
    return out * 10.0 ** ((rms_dbfs - rms_db(out)) / 20.0)


def limit_peaks(wave: np.ndarray, ceiling: float) -> np.ndarray:
    """Look-ahead peak limiter: a gain that never lets |wave| exceed `ceiling` and moves smoothly.

    Each gain value is a window average of gains computed from the loudest sample within a window
    twice as wide, so every averaged term already respects the sample it multiplies.
    """
    envelope = maximum_filter1d(np.abs(wave), size=2 * _LIMITER_WINDOW + 1)
    gain = np.minimum(1.0, ceiling / np.maximum(envelope, 1e-12))
    return wave * moving_average(gain, _LIMITER_WINDOW)
