"""The waveform front ends of Raw PC-DARTS (spec §4): the SincNet band-pass bank and a plain conv.

`sinc_filters` is the public, pure form of the fixed bank (float64 NumPy), for plotting and comparing
scales. The layer computes the same taps: once on the host for a fixed bank (a constant of the
network), or in JAX from its band-edge parameters when they are learnable (search only). The taps are
written once, `_taps`, over an array module (NumPy or jax.numpy).

Filter masking zeroes f = ⌊U(0, 16)⌋ consecutive output channels from a start f0 ∈ [0, C − f), one mask
for the whole batch, in training only; the draw comes from the 'mask' RNG stream.
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from darts_jax.nn.layers import given, torch_uniform
from darts_jax.spaces.raw.config import EXTRA_SINC_FILTERS, FRONTEND_PADDING, REQUESTED_TAPS, ModelConfig

MIN_LOW_HZ = 50.0
MIN_BAND_HZ = 50.0
MASK_MAX_WIDTH = 16


def odd_kernel(kernel_size: int) -> int:
    return kernel_size + 1 if kernel_size % 2 == 0 else kernel_size


def _mel(hz):
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _hz(mel):
    return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)


def band_edges(scale: str, num_bands: int, sample_rate: int = 16000) -> tuple[np.ndarray, np.ndarray]:
    """(low_hz_, band_hz_), the initial band parameters of `num_bands` filters: num_bands + 1 points
    from 0 to sample_rate/2 − (min_low + min_band) Hz, spaced by `scale`; low = points[:-1], band = diff.

    'lem' (inverse mel) is the mel points reversed minus 1 Hz, |reverse(hz_mel) − 1|: descending from
    about 7.9 kHz, its bands are negative and used through abs, still dense near 0 Hz (spec §4).
    """
    top = sample_rate / 2 - (MIN_LOW_HZ + MIN_BAND_HZ)
    if scale == "linear":
        points = np.linspace(0.0, top, num_bands + 1)
    elif scale in ("mel", "lem"):
        points = _hz(np.linspace(_mel(0.0), _mel(top), num_bands + 1))
        if scale == "lem":
            points = np.abs(points[::-1] - 1.0)
    else:
        raise ValueError(f"scale: {scale!r} is not one of mel, linear, lem")
    return points[:-1], np.diff(points)


def _taps(xp, low_hz_, band_hz_, kernel_size: int, sample_rate: int):
    """SincNet's "fast" band-pass taps (len(low_hz_), kernel_size) for odd `kernel_size`."""
    half = kernel_size // 2
    # The SincNet half-window quirk: n = linspace(0, K/2 − 1, ⌊K/2⌋), i.e. 0 .. 63.5 for K = 129.
    n_lin = xp.linspace(0.0, kernel_size / 2 - 1, half)
    window = 0.54 - 0.46 * xp.cos(2 * np.pi * n_lin / kernel_size)
    t_n = 2 * np.pi * xp.arange(-half, 0) / sample_rate
    low = MIN_LOW_HZ + xp.abs(low_hz_)[:, None]
    high = xp.clip(low + MIN_BAND_HZ + xp.abs(band_hz_)[:, None], MIN_LOW_HZ, sample_rate / 2)
    band = high - low
    left = (xp.sin(high * t_n) - xp.sin(low * t_n)) / (t_n / 2) * window
    taps = xp.concatenate([left, 2 * band, xp.flip(left, axis=1)], axis=1)
    return taps / (2 * band)


def sinc_filters(scale: str, num_filters: int, kernel_size: int = 129, sample_rate: int = 16000,
                 low_hz=None, band_hz=None, extra_filters: int = EXTRA_SINC_FILTERS) -> np.ndarray:
    """Taps (num_filters, odd kernel_size) of the sinc bank, in float64.

    The bank is computed for num_filters + extra_filters bands, of which the first num_filters are
    kept (the authors' C of C + 4). `low_hz` / `band_hz` (all C + 4 values, e.g. learned in a search)
    replace the scale's initial band parameters. An even kernel_size is made odd, as SincNet does.
    """
    if low_hz is None:
        low_hz, band_hz = band_edges(scale, num_filters + extra_filters, sample_rate)
    low_hz, band_hz = np.asarray(low_hz, np.float64), np.asarray(band_hz, np.float64)
    return _taps(np, low_hz, band_hz, odd_kernel(kernel_size), sample_rate)[:num_filters]


def filter_keep_mask(key, channels: int, max_width: int = MASK_MAX_WIDTH):
    """(channels,) of 1s with f = ⌊U(0, max_width)⌋ zeros from f0 uniform in [0, channels − f).

    With fewer than max_width channels (test sizes; the authors use 64) f stays below `channels`, so
    that [0, channels − f) is not empty and one filter survives: their NumPy randint would fail there.
    """
    width_key, start_key = jax.random.split(key)
    width = jax.random.randint(width_key, (), 0, min(max_width, channels))
    start = jax.random.randint(start_key, (), 0, channels - width)
    index = jnp.arange(channels)
    return ((index < start) | (index >= start + width)).astype(jnp.float32)


def conv1d(x_BxTxC, kernel_KxIxO, stride=1, padding=0, dilation=1, groups=1):
    """PyTorch Conv1d on (B, T, C): symmetric explicit padding."""
    return lax.conv_general_dilated(x_BxTxC, kernel_KxIxO, (stride,), ((padding, padding),),
                                    rhs_dilation=(dilation,), dimension_numbers=("NWC", "WIO", "NWC"),
                                    feature_group_count=groups)


class SincConv(nn.Module):
    """C band-pass filters of `REQUESTED_TAPS` (made odd) taps, stride 1, padding 2, no bias."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS):
        cfg = self.config
        channels, kernel = cfg.init_channels, odd_kernel(REQUESTED_TAPS)
        if cfg.sinc_low_hz:
            low_init, band_init = np.asarray(cfg.sinc_low_hz), np.asarray(cfg.sinc_band_hz)
        else:
            low_init, band_init = band_edges(cfg.sinc_scale, channels + EXTRA_SINC_FILTERS, cfg.sample_rate)
        if cfg.learnable_sinc:
            low_hz_ = self.param("low_hz_", given(low_init), low_init.shape)
            band_hz_ = self.param("band_hz_", given(band_init), band_init.shape)
            taps_CxK = _taps(jnp, low_hz_, band_hz_, kernel, cfg.sample_rate)[:channels]
        else:
            taps_CxK = jnp.asarray(_taps(np, low_init, band_init, kernel, cfg.sample_rate)[:channels], jnp.float32)
        return conv1d(wave_BxS[..., None], taps_CxK.T[:, None, :], padding=FRONTEND_PADDING)


class PlainConv(nn.Module):
    """The code-only alternative front end: Conv1d(1 → C, 128 taps, padding 2, with bias)."""
    channels: int

    @nn.compact
    def __call__(self, wave_BxS):
        kernel = self.param("kernel", torch_uniform(REQUESTED_TAPS), (REQUESTED_TAPS, 1, self.channels))
        bias = self.param("bias", torch_uniform(REQUESTED_TAPS), (self.channels,))
        return conv1d(wave_BxS[..., None], kernel, padding=FRONTEND_PADDING) + bias


class FrontEnd(nn.Module):
    """Waveforms (B, S) to (B, T, C) filter outputs, masked in training when config.mask."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, train: bool):
        cfg = self.config
        if cfg.frontend == "sinc":
            feats_BxTxC = SincConv(cfg, name="sinc")(wave_BxS)
        else:
            feats_BxTxC = PlainConv(cfg.init_channels, name="conv")(wave_BxS)
        if train and cfg.mask:
            feats_BxTxC = feats_BxTxC * filter_keep_mask(self.make_rng("mask"), cfg.init_channels)
        return feats_BxTxC
