"""The recording chain SynthSpoof puts every utterance through, bona fide and spoof alike.

Room reverberation, background noise, leading/trailing silence, the microphone's response and the
final level are drawn from one distribution whatever the class, so duration, RMS, noise floor and
silence carry no label; the chain itself treats every signal alike (a phase dispersion, a low-cut,
no limiter, the noise added after the level is set, the mean removed), so it adds no class-dependent
trace: a detector has to find the attacks' own.

Format 4 added three parts to take waveform- and spectral-shape cues away (docs/synthspoof_audit.md).
The dispersion, an all-pass cascade, spreads each glottal pulse over milliseconds, so the zero-crossings
follow the spectrum rather than whether the phase came from a pulse train or from a vocoder. The
microphone's equaliser (shelves and a presence band, drawn per utterance) spreads the spectral balance
and shape between recordings, diluting what is left of the attacks' differences in them. The room is
less dry (direct-to-reverberant ratio 5-15 dB), which blurs the waveform's peak shape.
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
# First-order all-pass sections of the dispersion, coefficients a in DISPERSION_COEFFICIENTS: each delays
# 0 Hz by (1 - a) / (1 + a) samples and 8 kHz by (1 + a) / (1 - a), so the cascade delays 0 Hz by 12 to
# 28 ms and 8 kHz by under 1.4 ms; weaker dispersions left zero-crossing and near-peak cues (#17).
DISPERSION_SECTIONS = 64
DISPERSION_COEFFICIENTS = (-0.75, -0.5)
MICROPHONE_GAIN_DB = 8.0  # the largest boost or cut of each equaliser band


@dataclasses.dataclass(frozen=True)
class EqBand:
    """One band of a parametric equaliser (RBJ cookbook biquads): 'low' or 'high' shelf, or 'peak'."""
    kind: str
    hz: float
    gain_db: float
    q: float


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
    dispersion: tuple[float, ...]  # first-order all-pass coefficients
    microphone: tuple[EqBand, ...]


def draw_channel(rng: np.random.Generator) -> Channel:
    """Durations, room, noise, microphone and level of one utterance."""
    speech_s = float(np.clip(rng.lognormal(np.log(2.4), 0.35), 1.0, 6.0))
    return Channel(
        speech_samples=int(speech_s * SAMPLE_RATE),
        lead_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        trail_samples=int(rng.uniform(0.05, 0.6) * SAMPLE_RATE),
        rt60_s=float(rng.uniform(0.1, 0.3)),
        direct_to_reverb_db=float(rng.uniform(5.0, 15.0)),
        snr_db=float(rng.uniform(30.0, 50.0)),
        noise_slope=float(rng.uniform(0.5, 1.5)),
        hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < 0.15 else 0.0,
        rms_dbfs=float(rng.uniform(-32.0, -22.0)),
        dispersion=tuple(float(a) for a in rng.uniform(*DISPERSION_COEFFICIENTS, size=DISPERSION_SECTIONS)),
        microphone=draw_microphone(rng),
    )


def draw_microphone(rng: np.random.Generator) -> tuple[EqBand, ...]:
    """A low shelf (150-500 Hz), a high shelf (2-6 kHz) and a presence band (1-6 kHz), each +-8 dB."""
    def gain():
        return float(rng.uniform(-MICROPHONE_GAIN_DB, MICROPHONE_GAIN_DB))
    low = EqBand("low", float(rng.uniform(150.0, 500.0)), gain(), 1.0 / np.sqrt(2.0))
    high = EqBand("high", float(rng.uniform(2000.0, 6000.0)), gain(), 1.0 / np.sqrt(2.0))
    presence_hz = float(np.exp(rng.uniform(np.log(1000.0), np.log(6000.0))))
    return low, high, EqBand("peak", presence_hz, gain(), float(rng.uniform(0.7, 2.0)))


def dispersion_sos(coefficients: tuple[float, ...]) -> np.ndarray:
    """The all-pass cascade (a + z^-1) / (1 + a z^-1), two sections per second-order row."""
    a = np.asarray(coefficients, float).reshape(-1, 2)
    product, total = a[:, 0] * a[:, 1], a.sum(axis=1)
    ones = np.ones(len(a))
    return np.stack([product, total, ones, ones, total, product], axis=1)


def eq_sos(bands: tuple[EqBand, ...]) -> np.ndarray:
    """Second-order sections of the equaliser bands (R. Bristow-Johnson's Audio EQ Cookbook)."""
    rows = []
    for band in bands:
        amplitude = 10.0 ** (band.gain_db / 40.0)
        omega = 2.0 * np.pi * band.hz / SAMPLE_RATE
        cos_w, alpha = np.cos(omega), np.sin(omega) / (2.0 * band.q)
        if band.kind == "peak":
            b = [1 + alpha * amplitude, -2 * cos_w, 1 - alpha * amplitude]
            a = [1 + alpha / amplitude, -2 * cos_w, 1 - alpha / amplitude]
        elif band.kind in ("low", "high"):
            sign = 1.0 if band.kind == "high" else -1.0
            root = 2.0 * np.sqrt(amplitude) * alpha
            up = (amplitude + 1) + sign * (amplitude - 1) * cos_w
            down = (amplitude + 1) - sign * (amplitude - 1) * cos_w
            b = [amplitude * (up + root), -2 * sign * amplitude * ((amplitude - 1) + sign * (amplitude + 1) * cos_w),
                 amplitude * (up - root)]
            a = [down + root, 2 * sign * ((amplitude - 1) - sign * (amplitude + 1) * cos_w), down - root]
        else:
            raise ValueError(f"EqBand.kind: {band.kind!r} is not 'low', 'high' or 'peak'")
        rows.append(np.array(b + a) / a[0])
    return np.stack(rows) if rows else np.array([[1.0, 0.0, 0.0, 1.0, 0.0, 0.0]])  # no bands: a flat response


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
    """Silence-padded, dispersed, reverberant, equalised, noisy speech at the channel's RMS level (float,
    in [-1, 1]).

    The level is set on the speech alone and the noise is added after it, at the channel's SNR re the
    levelled speech: the noise floor then follows the speech level whatever the signal's crest factor.
    A low-cut filter (the microphone preamp's) takes rumble out of speech and noise alike, and the
    file's mean is removed.
    """
    if speech.size != channel.speech_samples:
        raise ValueError(f"speech has {speech.size} samples, the channel expects {channel.speech_samples}")
    total = channel.lead_samples + speech.size + channel.trail_samples
    padded = np.zeros(total)
    padded[channel.lead_samples:channel.lead_samples + speech.size] = sosfilt(dispersion_sos(channel.dispersion),
                                                                               speech)
    wet = low_cut(fftconvolve(padded, room_impulse_response(channel, rng))[:total])
    levelled = set_level(sosfilt(eq_sos(channel.microphone), wet), channel.rms_dbfs)
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
