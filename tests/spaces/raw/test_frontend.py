"""The sinc bank against an independent NumPy implementation of spec §4's formulas, its coverage
figures, the layer in both modes, and filter masking."""
import math

import jax
import numpy as np
import pytest

from darts_jax.spaces.raw.config import ModelConfig
from darts_jax.spaces.raw.frontend import FrontEnd, filter_keep_mask, sinc_filters


def reference_points(scale, n_points, top=7900.0):
    """Spec §4: C + 5 points between 0 and 8000 − 100 Hz."""
    if scale == "linear":
        return [top * i / (n_points - 1) for i in range(n_points)]
    mel_top = 2595 * math.log10(1 + top / 700)
    hz = [700 * (10 ** (mel_top * i / (n_points - 1) / 2595) - 1) for i in range(n_points)]
    if scale == "lem":
        hz = [abs(f - 1) for f in reversed(hz)]
    return hz


def reference_bank(scale, channels, kernel=129, sr=16000):
    """Spec §4, one filter at a time: left half with the 0..63.5 half window, centre 2(high − low),
    mirrored right half, all divided by 2(high − low); the first C of C + 4 kept."""
    points = reference_points(scale, channels + 5)
    half = (kernel - 1) // 2
    window = [0.54 - 0.46 * math.cos(2 * math.pi * (j * (kernel / 2 - 1) / (half - 1)) / kernel)
              for j in range(half)]
    bank = []
    for i in range(channels):
        low = 50 + abs(points[i])
        high = min(max(low + 50 + abs(points[i + 1] - points[i]), 50), sr / 2)
        left = []
        for j, n in enumerate(range(-half, 0)):
            t = 2 * math.pi * n / sr
            left.append((math.sin(high * t) - math.sin(low * t)) / (t / 2) * window[j])
        taps = left + [2 * (high - low)] + left[::-1]
        bank.append([v / (2 * (high - low)) for v in taps])
    return np.array(bank), points


@pytest.mark.parametrize("scale", ["mel", "linear", "lem"])
def test_sinc_filters_match_the_spec_formulas(scale):
    taps = sinc_filters(scale, 64)
    expected, _ = reference_bank(scale, 64)
    assert taps.shape == (64, 129)
    assert np.abs(taps - expected).max() < 1e-6


def test_kernel_128_is_made_odd():
    assert sinc_filters("mel", 8, kernel_size=128).shape == (8, 129)


@pytest.mark.parametrize("scale, below_1k, lowest, highest", [
    ("mel", 24, 50.0, 6820.0), ("linear", 9, 50.0, 7535.0), ("lem", 19, 190.0, 8000.0)])
def test_kept_filters_cover_what_the_spec_reports(scale, below_1k, lowest, highest):
    """Spec §4's coverage figures for C = 64, from the band edges the formulas give."""
    _, points = reference_bank(scale, 64)
    low = np.array([50 + abs(p) for p in points[:64]])
    high = np.minimum(low + 50 + np.abs(np.diff(points)[:64]), 8000)
    assert int((low < 1000).sum()) == below_1k
    assert abs(low.min() - lowest) < 0.05 * lowest and abs(high.max() - highest) < 0.01 * highest
    # And the library's bank is the bank of those edges: a filter passes its own centre frequency.
    taps = sinc_filters(scale, 64)
    centre = (low + high) / 2
    n = np.arange(-64, 65)
    gain = np.abs(taps @ np.exp(-2j * np.pi * np.outer(n, centre) / 16000)).diagonal()
    assert np.all(gain > 0.5)


def _apply(config, wave, train, key=0):
    module = FrontEnd(config)
    variables = module.init(jax.random.key(0), wave, False)
    return module.apply(variables, wave, train, rngs={"mask": jax.random.key(key)}), variables


def test_the_layer_filters_with_the_bank_and_padding_2():
    config = ModelConfig(init_channels=8, num_samples=6124, mask=False)
    wave = np.random.default_rng(0).standard_normal((2, 600)).astype(np.float32)
    out, variables = _apply(config, wave, train=True)
    assert out.shape == (2, 600 + 4 - 129 + 1, 8)
    assert variables == {}  # a fixed bank holds no parameters
    taps = sinc_filters("mel", 8)
    padded = np.pad(wave, ((0, 0), (2, 2)))
    expected = np.stack([[np.correlate(row, f, "valid") for f in taps] for row in padded]).transpose(0, 2, 1)
    np.testing.assert_allclose(out, expected, atol=2e-5)
    # Learnable: the same bank at initialisation, from 2 x (C + 4) band parameters.
    learnable, params = _apply(ModelConfig(init_channels=8, num_samples=6124, mask=False, learnable_sinc=True),
                               wave, train=True)
    assert {k: v.shape for k, v in params["params"]["sinc"].items()} == {"low_hz_": (12,), "band_hz_": (12,)}
    np.testing.assert_allclose(learnable, out, atol=1e-4)


def test_masking_zeroes_one_run_of_filters_for_the_whole_batch():
    config = ModelConfig(init_channels=32, num_samples=6124, frontend="conv")
    wave = np.random.default_rng(1).standard_normal((4, 400)).astype(np.float32)
    unmasked, _ = _apply(config, wave, train=False)
    assert np.all(np.abs(unmasked).max(axis=1) > 0)
    widths = []
    for key in range(40):
        out, _ = _apply(config, wave, train=True, key=key)
        zero_BxC = np.all(np.asarray(out) == 0, axis=1)
        assert np.all(zero_BxC == zero_BxC[0])  # the same mask for every example
        zeroed = np.flatnonzero(zero_BxC[0])
        kept = ~zero_BxC[0]
        np.testing.assert_array_equal(np.asarray(out)[:, :, kept], np.asarray(unmasked)[:, :, kept])
        if zeroed.size:
            assert np.array_equal(zeroed, np.arange(zeroed[0], zeroed[-1] + 1))  # consecutive
            assert zeroed[-1] < 31  # the last filter is never masked (f0 < C − f)
        widths.append(zeroed.size)
    assert max(widths) <= 15 and len(set(widths)) > 5
    # Same key, same mask; evaluation never masks.
    np.testing.assert_array_equal(_apply(config, wave, True, key=3)[0], _apply(config, wave, True, key=3)[0])


def test_a_narrow_bank_always_keeps_a_filter():
    """Below 16 channels the width is drawn below C, so some filter survives every draw."""
    keep = [np.asarray(filter_keep_mask(jax.random.key(k), 4)) for k in range(60)]
    assert min(mask.sum() for mask in keep) >= 1 and min(mask.sum() for mask in keep) < 4
