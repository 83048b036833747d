"""Hand-crafted front ends (LFCC, LFB, log spectrogram) and frequency masking, spec §6.

Everything here is a pure jnp function of a float32 waveform batch, so the features can be
computed inside the jitted training step. Fixed tensors (window, filterbank, DCT) are built once
in float64 numpy and enter the graph as float32 constants.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import scipy.fft

from darts_jax.data.audio import SAMPLE_RATE

FRAME_LENGTH = 1024
HOP_LENGTH = 256
NUM_FFT = 1024
NUM_FILTERS = 70
NUM_CEPSTRA = 20
LOG_FLOOR = float(np.finfo(np.float32).eps)

FRONTEND_DIMS = {"lfcc": 3 * NUM_CEPSTRA, "lfb": NUM_FILTERS, "spec": NUM_FFT // 2 + 1}
# torchaudio mask_param: filter_num / 5 for the filterbank front ends (LFCC included, although it
# has 60 dims) and nfft / 10 for the spectrogram.
MASK_MAX_WIDTH = {"lfcc": NUM_FILTERS // 5, "lfb": NUM_FILTERS // 5, "spec": NUM_FFT // 10}

# Full float32 accuracy for the small matmuls: TF32 on GPUs would cost ~1e-3 relative error.
_MATMUL_PRECISION = jax.lax.Precision.HIGHEST


@functools.cache
def hamming_window(length: int = FRAME_LENGTH) -> np.ndarray:
    """Periodic Hamming window (torch.hamming_window default), float64."""
    n = np.arange(length)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * n / length)


@functools.cache
def linear_filterbank(num_filters: int = NUM_FILTERS, num_fft: int = NUM_FFT,
                      sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(num_fft//2+1, num_filters) triangular filters with equally spaced edges, float64.

    Matlab `trimf` on the FFT bin frequencies: strict inequalities on both slopes and exactly 1
    where a bin coincides with a filter's centre.
    """
    nyquist = sample_rate / 2
    bin_freqs = nyquist * np.arange(num_fft // 2 + 1) / (num_fft // 2)
    edges = np.linspace(0.0, nyquist, num_filters + 2)
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    f = bin_freqs[None, :]
    rising = np.where((lower < f) & (f < centre), (f - lower) / (centre - lower), 0.0)
    falling = np.where((centre < f) & (f < upper), (upper - f) / (upper - centre), 0.0)
    filters = np.where(f == centre, 1.0, rising + falling)
    return filters.T


@functools.cache
def dct_matrix(num_channels: int = NUM_FILTERS, num_coefficients: int = NUM_CEPSTRA) -> np.ndarray:
    """(num_channels, num_coefficients) orthonormal DCT-II, applied as `x @ matrix`, float64."""
    return scipy.fft.dct(np.eye(num_channels), type=2, norm="ortho", axis=-1)[:, :num_coefficients]


def num_frames(num_samples: int) -> int:
    """Frames of the centred, zero-padded STFT (64000 samples -> 251)."""
    if num_samples < 1:
        raise ValueError(f"num_samples: {num_samples} must be at least 1")
    return 1 + num_samples // HOP_LENGTH


def _check_wave(wave_BxS) -> None:
    if wave_BxS.ndim != 2:
        raise ValueError(f"wave_BxS: expected shape (batch, samples), got {tuple(wave_BxS.shape)}")


def power_spectrum(wave_BxS: jax.Array) -> jax.Array:
    """(B, T, 513) |STFT|² with the periodic Hamming window, centred zero padding."""
    _check_wave(wave_BxS)
    num_samples = wave_BxS.shape[1]
    frames = num_frames(num_samples)
    hops_per_frame = FRAME_LENGTH // HOP_LENGTH
    # Frames are hop-aligned, so each is `hops_per_frame` consecutive hop-sized blocks: shifted
    # slices of the blocked signal replace a gather.
    used = (frames + hops_per_frame - 1) * HOP_LENGTH
    padded = jnp.pad(wave_BxS.astype(jnp.float32), ((0, 0), (NUM_FFT // 2, NUM_FFT // 2)))
    blocks = padded[:, :used].reshape(wave_BxS.shape[0], -1, HOP_LENGTH)
    frames_BxTxL = jnp.concatenate(
        [blocks[:, i:i + frames] for i in range(hops_per_frame)], axis=-1)
    window = jnp.asarray(hamming_window(), dtype=jnp.float32)
    spectrum = jnp.fft.rfft(frames_BxTxL * window, n=NUM_FFT, axis=-1)
    return jnp.square(spectrum.real) + jnp.square(spectrum.imag)


def _log10(x: jax.Array) -> jax.Array:
    return jnp.log10(x + LOG_FLOOR)


def _apply_matrix(x: jax.Array, matrix: np.ndarray) -> jax.Array:
    return jnp.matmul(x, jnp.asarray(matrix, dtype=jnp.float32), precision=_MATMUL_PRECISION)


def delta(x_BxTxF: jax.Array) -> jax.Array:
    """x[t+1] - x[t-1] along time with replicated edges, no division by 2."""
    padded = jnp.pad(x_BxTxF, ((0, 0), (1, 1), (0, 0)), mode="edge")
    return padded[:, 2:] - padded[:, :-2]


def lfb(wave_BxS: jax.Array) -> jax.Array:
    """(B, T, 70) log10 linear filterbank energies."""
    return _log10(_apply_matrix(power_spectrum(wave_BxS), linear_filterbank()))


def lfcc(wave_BxS: jax.Array) -> jax.Array:
    """(B, T, 60) [20 LFCC incl. c0 | Δ | ΔΔ]."""
    static = _apply_matrix(lfb(wave_BxS), dct_matrix())
    velocity = delta(static)
    return jnp.concatenate([static, velocity, delta(velocity)], axis=-1)


def spectrogram(wave_BxS: jax.Array) -> jax.Array:
    """(B, T, 513) log10 power spectrogram."""
    return _log10(power_spectrum(wave_BxS))


_EXTRACTORS = {"lfcc": lfcc, "lfb": lfb, "spec": spectrogram}


def extract_features(name: str, wave_BxS: jax.Array) -> jax.Array:
    """(B, T, FRONTEND_DIMS[name]) features of front end `name`."""
    if name not in _EXTRACTORS:
        raise ValueError(f"frontend: {name!r} is not one of {', '.join(_EXTRACTORS)}")
    return _EXTRACTORS[name](wave_BxS)


def frequency_mask(key: jax.Array, feats_BxTxF: jax.Array, max_width: int) -> jax.Array:
    """Zeroes one band of the feature axis, shared by the whole batch (torchaudio, iid_masks=False).

    As torchaudio's mask_along_axis: width_draw ~ U(0, max_width), start ~ floor(U(0, D - width_draw))
    with the unfloored width, band [start, start + floor(width_draw)).
    """
    width_key, start_key = jax.random.split(key)
    num_features = feats_BxTxF.shape[-1]
    width_draw = jax.random.uniform(width_key, (), jnp.float32) * max_width
    start = jnp.floor(jax.random.uniform(start_key, (), jnp.float32) * (num_features - width_draw))
    end = start + jnp.floor(width_draw)
    index = jnp.arange(num_features, dtype=jnp.float32)
    in_band = (index >= start) & (index < end)
    return jnp.where(in_band, jnp.zeros((), feats_BxTxF.dtype), feats_BxTxF)
