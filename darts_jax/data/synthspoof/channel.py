"""The recording chain SynthSpoof puts every utterance through, bona fide and spoof alike.

Room reverberation, background noise, leading/trailing silence and the final level are drawn from
one distribution whatever the class, so duration, RMS, noise floor and silence carry no label; the
chain itself treats every signal alike (a low-cut, no limiter, the noise added after the level is
set, the mean removed), so it adds no class-dependent trace: a detector has to find the attacks' own.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from scipy.fft import next_fast_len
from scipy.signal import butter, fftconvolve, sosfilt

from darts_jax.data.synthspoof.spectral import SAMPLE_RATE, moving_average

MAX_PEAK_DBFS = -1.0
LOW_CUT_HZ = 50.0
_LOW_CUT_SOS = butter(2, LOW_CUT_HZ, btype="highpass", fs=SAMPLE_RATE, output="sos")


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


def draw_channel(rng: np.random.Generator) -> Channel:
    """Durations, room, noise and level of one utterance."""
    speech_s = float(np.clip(rng.lognormal(np.log(2.4), 0.35), 1.0, 6.0))
    return Channel(
        speech_samples=int(speech_s * SAMPLE_RATE),
        lead_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        trail_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        rt60_s=float(rng.uniform(0.1, 0.3)),
        direct_to_reverb_db=float(rng.uniform(10.0, 20.0)),
        snr_db=float(rng.uniform(30.0, 50.0)),
        noise_slope=float(rng.uniform(0.5, 1.5)),
        hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < 0.15 else 0.0,
        rms_dbfs=float(rng.uniform(-32.0, -22.0)),
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
    """Silence-padded, reverberant, noisy speech at the channel's RMS level (float, in [-1, 1]).

    The level is set on the speech alone and the noise is added after it, at the channel's SNR re the
    levelled speech: the noise floor then follows the speech level whatever the signal's crest factor.
    A low-cut filter (the microphone preamp's) takes rumble out of speech and noise alike, and the
    file's mean is removed.
    """
    if speech.size != channel.speech_samples:
        raise ValueError(f"speech has {speech.size} samples, the channel expects {channel.speech_samples}")
    total = channel.lead_samples + speech.size + channel.trail_samples
    padded = np.zeros(total)
    padded[channel.lead_samples:channel.lead_samples + speech.size] = speech
    wet = low_cut(fftconvolve(padded, room_impulse_response(channel, rng))[:total])
    levelled = set_level(wet, channel.rms_dbfs)
    speech_rms = np.sqrt(np.mean(levelled[channel.lead_samples:channel.lead_samples + speech.size] ** 2))
    noise = low_cut(background_noise(total, channel, rng)) * speech_rms * 10.0 ** (-channel.snr_db / 20.0)
    noisy = levelled + noise
    # The converter's DC servo: the low-cut leaves an offset of its transients that differs by signal.
    return noisy - noisy.mean()


def low_cut(wave: np.ndarray) -> np.ndarray:
    """Second-order Butterworth high-pass at LOW_CUT_HZ: removes DC, keeps the lowest voices' f0."""
    return sosfilt(_LOW_CUT_SOS, wave)


def set_level(wave: np.ndarray, rms_dbfs: float) -> np.ndarray:
    """`wave` scaled to `rms_dbfs` RMS, or less where its peak would then pass MAX_PEAK_DBFS.

    No limiter: one that pins peaks to a ceiling leaves a plateau (many samples at the maximum)
    whose extent follows each signal's crest factor, and so differs between bona fide and attacks.
    The RMS range of `draw_channel` leaves headroom for all but the peakiest utterances.
    """
    rms_db = 10.0 * np.log10(np.mean(wave ** 2))
    peak_db = 20.0 * np.log10(np.max(np.abs(wave)))
    return wave * 10.0 ** (min(rms_dbfs - rms_db, MAX_PEAK_DBFS - peak_db) / 20.0)
