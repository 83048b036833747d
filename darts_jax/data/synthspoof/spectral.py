"""Numpy short-time Fourier tools for SynthSpoof: analysis/resynthesis, time-varying filtering, envelopes,
band-energy matching."""
from __future__ import annotations

import functools

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from darts_jax.data.audio import SAMPLE_RATE

# Band edges (Hz) within which `match_band_balance` equalises long-term energy; the gain ramps between
# bands over 40 % of the narrower one, at most BALANCE_RAMP_HZ. The low bands are narrow because LPC
# and Griffin-Lim outputs put their excess energy below f0.
BALANCE_EDGES_HZ = (60.0, 120.0, 200.0, 300.0, 500.0, 1000.0, 2000.0, 4000.0, 7000.0)
BALANCE_RAMP_HZ = 200.0


@functools.lru_cache(maxsize=16)
def hann(length: int) -> np.ndarray:
    """Periodic Hann window (read-only): copies length/2 apart sum to one."""
    return _read_only(0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length))


def windowed_frames(wave: np.ndarray, frame: int, hop: int) -> np.ndarray:
    """(frames, frame) Hann-windowed frames; frame m is centred on sample m*hop (zero padding at the edges)."""
    padded = np.pad(wave, (frame // 2, frame // 2 + hop))
    return sliding_window_view(padded, frame)[::hop] * hann(frame)


def stft(wave: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """(frames, n_fft/2 + 1) spectrum of `windowed_frames`; `frame_times` gives the frame centres."""
    return np.fft.rfft(windowed_frames(wave, n_fft, hop), axis=-1)


def overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum of frames placed `hop` samples apart, (frames - 1) * hop + frame_length samples long."""
    count, length = frames.shape
    blocks = -(-length // hop)
    padded = np.zeros((count, blocks * hop))
    padded[:, :length] = frames
    out = np.zeros((count + blocks - 1, hop))
    for block in range(blocks):
        out[block:block + count] += padded[:, block * hop:(block + 1) * hop]
    return out.reshape(-1)[: (count - 1) * hop + length]


def istft(spectrum: np.ndarray, hop: int, length: int) -> np.ndarray:
    """Weighted overlap-add inverse of `stft` (least-squares when the spectrum is not consistent)."""
    n_fft = 2 * (spectrum.shape[-1] - 1)
    out = overlap_add(np.fft.irfft(spectrum, n=n_fft, axis=-1) * hann(n_fft), hop)
    return (out * _inverse_window_sum(spectrum.shape[0], n_fft, hop))[n_fft // 2:n_fft // 2 + length]


@functools.lru_cache(maxsize=64)
def _inverse_window_sum(count: int, n_fft: int, hop: int) -> np.ndarray:
    norm = overlap_add(np.broadcast_to(hann(n_fft) ** 2, (count, n_fft)), hop)
    return _read_only(1.0 / np.maximum(norm, 1e-8))


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def frame_times(num_samples: int, hop: int) -> np.ndarray:
    """Centre sample of each `stft` frame."""
    return np.arange(num_samples // hop + 2) * hop


def griffin_lim(magnitude: np.ndarray, hop: int, length: int, iterations: int,
                rng: np.random.Generator) -> np.ndarray:
    """Waveform whose STFT magnitude approximates `magnitude`, from random initial phases."""
    n_fft = 2 * (magnitude.shape[-1] - 1)
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    wave = istft(magnitude * phase, hop, length)
    for _ in range(iterations):
        rebuilt = stft(wave, n_fft, hop)[: magnitude.shape[0]]
        wave = istft(magnitude * rebuilt / np.maximum(np.abs(rebuilt), 1e-12), hop, length)
    return wave


def filter_time_varying(wave: np.ndarray, response: np.ndarray, frame: int) -> np.ndarray:
    """Filters `wave` with a different frequency response on each half-overlapping Hann frame.

    `response` is (frames, n_fft/2 + 1) for frames centred on multiples of frame/2 (see `frame_times`);
    n_fft >= 2*frame leaves room for the filter's tail, and since the windows sum to one a constant
    response gives plain convolution (its impulse response truncated to n_fft - frame samples).
    """
    hop = frame // 2
    n_fft = 2 * (response.shape[-1] - 1)
    padded = np.pad(wave, (hop, frame + n_fft))
    count = response.shape[0]
    frames = sliding_window_view(padded, frame)[::hop][:count] * hann(frame)
    filtered = np.fft.irfft(np.fft.rfft(frames, n=n_fft, axis=-1) * response, n=n_fft, axis=-1)
    return overlap_add(filtered, hop)[hop:hop + wave.size]


def all_pole_response(centres_hz: np.ndarray, bandwidths_hz: np.ndarray, n_fft: int) -> np.ndarray:
    """(frames, n_fft/2 + 1) complex response of cascaded two-pole resonators, unit gain at 0 Hz.

    centres_hz and bandwidths_hz are (frames, resonators); the cascade's denominator polynomial is
    built per frame and evaluated on the FFT grid in one transform.
    """
    radius = np.exp(-np.pi * bandwidths_hz / SAMPLE_RATE)
    a1, a2 = -2.0 * radius * np.cos(2.0 * np.pi * centres_hz / SAMPLE_RATE), radius ** 2
    poly = np.zeros((centres_hz.shape[0], 2 * centres_hz.shape[1] + 1))
    poly[:, 0] = 1.0
    for k in range(centres_hz.shape[1]):
        shifted1 = np.roll(poly, 1, axis=1)
        shifted2 = np.roll(poly, 2, axis=1)
        shifted1[:, 0] = 0.0
        shifted2[:, :2] = 0.0
        poly = poly + a1[:, k:k + 1] * shifted1 + a2[:, k:k + 1] * shifted2
    return poly.sum(axis=1, keepdims=True) / np.fft.rfft(poly, n=n_fft, axis=1)


def cepstral_envelope(log_magnitude: np.ndarray, order: int) -> np.ndarray:
    """Smooth log-magnitude envelope keeping the first `order` cepstral coefficients (per frame)."""
    cepstrum = np.fft.irfft(log_magnitude, axis=-1)
    cepstrum[..., order:cepstrum.shape[-1] - order + 1] = 0.0
    return np.fft.rfft(cepstrum, axis=-1).real


def mel_filterbank(num_mels: int, n_fft: int, max_hz: float) -> np.ndarray:
    """(num_mels, bins) triangular filters equally spaced on the mel scale from 0 to max_hz, area-normalised."""
    def to_mel(hz):
        return 2595.0 * np.log10(1.0 + hz / 700.0)

    edges_hz = 700.0 * (10.0 ** (np.linspace(0.0, to_mel(max_hz), num_mels + 2) / 2595.0) - 1.0)
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz - lower) / (centre - lower)
    falling = (upper - bins_hz) / (upper - centre)
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return filters * (2.0 / (upper - lower))


def moving_average(values: np.ndarray, width: int, axis: int = 0) -> np.ndarray:
    """Centred moving average with edge replication; width 1 returns the input."""
    if width <= 1:
        return values
    pad = [(0, 0)] * values.ndim
    pad[axis] = (width // 2 + 1, width - 1 - width // 2)
    padded = np.pad(values, pad, mode="edge")
    padded = np.moveaxis(padded, axis, 0).copy()
    padded[0] = 0.0
    sums = np.cumsum(padded, axis=0)
    return np.moveaxis((sums[width:] - sums[:-width]) / width, 0, axis)


def match_band_balance(spectrum: np.ndarray, reference_power: np.ndarray, freqs: np.ndarray) -> np.ndarray:
    """`spectrum` times a smooth zero-phase gain that gives each BALANCE band the energy of `reference_power`.

    The gain is constant inside a band and ramps linearly across each edge (a filter tens of ms long
    at most, no audible step); the ramps shift a little energy between neighbouring bands, so a
    second pass corrects what the first left.
    """
    edges = np.array(BALANCE_EDGES_HZ)
    widths = np.diff(np.concatenate([[0.0], edges, [SAMPLE_RATE / 2]]))
    ramps = np.minimum(BALANCE_RAMP_HZ, 0.4 * np.minimum(widths[:-1], widths[1:]))
    band = np.searchsorted(edges, freqs, side="right")
    bands = edges.size + 1
    target = np.bincount(band, reference_power, minlength=bands) + 1e-20
    lows = np.concatenate([[freqs[0]], edges + ramps / 2])
    highs = np.concatenate([edges - ramps / 2, [freqs[-1]]])
    for _ in range(2):
        current = np.bincount(band, np.abs(spectrum) ** 2, minlength=bands) + 1e-20
        gain_db = 10.0 * np.log10(target / current)
        curve = np.interp(freqs, np.stack([lows, highs], axis=1).ravel(), np.repeat(gain_db, 2))
        spectrum = spectrum * 10.0 ** (curve / 20.0)
    return spectrum
