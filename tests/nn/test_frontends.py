"""Front ends against an independent float64 NumPy/SciPy reference, and frequency masking."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
import scipy.signal

from darts_jax.nn import frontends

SAMPLE_RATE = 16000
NUM_SAMPLES = 4 * SAMPLE_RATE


def _test_waves() -> np.ndarray:
    """Two 4 s signals with different content: chirps, tones and seeded noise."""
    rng = np.random.default_rng(0)
    t = np.arange(NUM_SAMPLES) / SAMPLE_RATE
    first = (0.3 * scipy.signal.chirp(t, f0=50, t1=4.0, f1=7900, method="linear")
             + 0.2 * np.sin(2 * np.pi * 440 * t)
             + 0.01 * rng.standard_normal(NUM_SAMPLES))
    second = (0.4 * scipy.signal.chirp(t, f0=6000, t1=4.0, f1=200, method="logarithmic")
              + 0.1 * np.sin(2 * np.pi * 3150 * t) * (t > 1.5)
              + 0.02 * rng.standard_normal(NUM_SAMPLES))
    return np.stack([first, second]).astype(np.float32)


def _reference_trimf(x, a, b, c):
    y = np.zeros_like(x)
    for i, v in enumerate(x):
        if a < v < b:
            y[i] = (v - a) / (b - a)
        elif b < v < c:
            y[i] = (c - v) / (c - b)
        elif v == b:
            y[i] = 1.0
    return y


def _reference_filterbank(num_filters):
    bins = 8000.0 * np.arange(513) / 512
    edges = np.linspace(0.0, 8000.0, num_filters + 2)
    return np.stack([_reference_trimf(bins, *edges[j:j + 3]) for j in range(num_filters)], axis=1)


def _reference_power(wave):
    padded = np.pad(wave.astype(np.float64), ((0, 0), (512, 512)))
    count = 1 + (padded.shape[1] - 1024) // 256
    index = 256 * np.arange(count)[:, None] + np.arange(1024)[None, :]
    window = scipy.signal.get_window("hamming", 1024, fftbins=True)
    return np.abs(np.fft.rfft(padded[:, index] * window, axis=-1)) ** 2


def _reference_delta(x):
    later = np.concatenate([x[:, 1:], x[:, -1:]], axis=1)
    earlier = np.concatenate([x[:, :1], x[:, :-1]], axis=1)
    return later - earlier


def _reference_features(wave):
    eps = np.finfo(np.float32).eps
    power = _reference_power(wave)
    log_fb = np.log10(power @ _reference_filterbank(70) + eps)
    cepstra = scipy.fft.dct(log_fb, type=2, norm="ortho", axis=-1)[..., :20]
    d1 = _reference_delta(cepstra)
    return {
        "lfcc": np.concatenate([cepstra, d1, _reference_delta(d1)], axis=-1),
        "lfb": log_fb,
        "spec": np.log10(power + eps),
    }


@pytest.fixture(scope="module")
def waves():
    return _test_waves()


@pytest.fixture(scope="module")
def reference(waves):
    return _reference_features(waves)


def test_frame_count_and_dims(waves):
    assert frontends.num_frames(NUM_SAMPLES) == 251
    for name, dims in (("lfcc", 60), ("lfb", 70), ("spec", 513)):
        assert frontends.FRONTEND_DIMS[name] == dims
        assert frontends.extract_features(name, jnp.asarray(waves)).shape == (2, 251, dims)


@pytest.mark.parametrize("num_samples", [1, 255, 256, 257, 1000])
def test_num_frames_matches_centred_framing(num_samples):
    wave = np.ones((1, num_samples), np.float32)
    expected = _reference_power(wave).shape[1]
    assert frontends.num_frames(num_samples) == expected
    assert frontends.spectrogram(jnp.asarray(wave)).shape == (1, expected, 513)


@pytest.mark.parametrize("name", ["lfcc", "lfb"])
def test_filterbank_features_match_reference(name, waves, reference):
    got = np.asarray(frontends.extract_features(name, jnp.asarray(waves)))
    np.testing.assert_allclose(got, reference[name], rtol=0, atol=1e-3)


def test_spectrogram_matches_reference(waves, reference):
    # float32 FFT error is absolute, on the scale of the frame's strongest bin, so log10 of a bin far
    # below it (a chance near-null, e.g. at Nyquist) is only as accurate as that bin is large.
    # Bins within 60 dB of their frame's peak must match log10 to 1e-3; every bin must match in
    # magnitude to 1e-5 of its frame's peak magnitude.
    got = np.asarray(frontends.spectrogram(jnp.asarray(waves))).astype(np.float64)
    want = reference["spec"]
    peak = want.max(axis=-1, keepdims=True)
    strong = want >= peak - 6.0
    assert strong.mean() > 0.5
    np.testing.assert_allclose(got[strong], want[strong], rtol=0, atol=1e-3)
    magnitude_error = np.abs(10.0 ** (got / 2) - 10.0 ** (want / 2))
    assert (magnitude_error / 10.0 ** (peak / 2)).max() < 1e-5


@pytest.mark.parametrize("num_filters", [70, 63])
def test_filterbank_is_matlab_trimf(num_filters):
    np.testing.assert_allclose(frontends.linear_filterbank(num_filters), _reference_filterbank(num_filters),
                               rtol=0, atol=1e-12)


def test_filterbank_peak_is_exactly_one_where_a_bin_hits_the_centre():
    # With 63 filters the centres 8000·j/64 Hz fall on every 8th bin (8000·8j/512 Hz).
    filters = frontends.linear_filterbank(63)
    for j in range(63):
        assert filters[8 * (j + 1), j] == 1.0
        assert filters[:, j].max() == 1.0
    # The published 70 filters: no bin lands on a centre (71 does not divide 512), so peaks stay below 1.
    assert frontends.linear_filterbank().max() < 1.0


def test_unknown_frontend_names_the_field(waves):
    with pytest.raises(ValueError, match="frontend"):
        frontends.extract_features("mfcc", jnp.asarray(waves))


def test_wave_must_be_batched():
    with pytest.raises(ValueError, match="wave_BxS"):
        frontends.lfcc(jnp.zeros(1000))


@pytest.mark.parametrize("name", ["lfcc", "lfb", "spec"])
def test_jit_equals_eager(name, waves):
    wave = jnp.asarray(waves)
    eager = np.asarray(frontends.extract_features(name, wave))
    jitted = np.asarray(jax.jit(frontends.extract_features, static_argnums=0)(name, wave))
    np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-5)


def _mask_of(key, shape, max_width):
    feats = jax.random.normal(jax.random.key(99), shape) + 10.0  # never zero
    return feats, frontends.frequency_mask(key, feats, max_width)


def test_mask_is_shared_contiguous_and_leaves_the_rest_untouched():
    for seed in range(20):
        feats, out = _mask_of(jax.random.key(seed), (3, 7, 60), 14)
        feats, out = np.asarray(feats), np.asarray(out)
        zero = out == 0
        assert np.array_equal(zero, np.broadcast_to(zero[:1, :1], zero.shape))
        band = np.flatnonzero(zero[0, 0])
        if band.size:
            assert np.array_equal(band, np.arange(band[0], band[-1] + 1))
        np.testing.assert_array_equal(out[~zero], feats[~zero])


def test_same_key_same_mask_and_keys_differ():
    _, first = _mask_of(jax.random.key(5), (2, 3, 60), 14)
    _, again = _mask_of(jax.random.key(5), (2, 3, 60), 14)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(again))
    bands = {tuple(np.asarray(_mask_of(jax.random.key(s), (1, 1, 60), 14)[1] == 0)[0, 0]) for s in range(30)}
    assert len(bands) > 10


@pytest.mark.parametrize("name", ["lfcc", "spec"])
def test_mask_widths_cover_zero_to_p_minus_one(name):
    dims, max_width = frontends.FRONTEND_DIMS[name], frontends.MASK_MAX_WIDTH[name]
    keys = jax.random.split(jax.random.key(1), 20000)
    feats = jnp.ones((1, 1, dims))
    masked = jax.jit(jax.vmap(lambda k: frontends.frequency_mask(k, feats, max_width)))(keys)
    zero = np.asarray(masked[:, 0, 0] == 0)
    widths = zero.sum(axis=-1)
    assert set(widths.tolist()) == set(range(max_width))
    starts = np.where(widths > 0, zero.argmax(axis=-1), -1)
    assert starts[widths > 0].min() == 0
    # torchaudio draws the start from U(0, D - unfloored width): the band never reaches bin D-1.
    assert not zero[:, -1].any()
    assert (starts + widths)[widths > 0].max() == dims - 1


def test_mask_constants():
    assert frontends.MASK_MAX_WIDTH == {"lfcc": 14, "lfb": 14, "spec": 102}


def test_mask_jit_equals_eager():
    feats = jax.random.normal(jax.random.key(3), (2, 4, 513))
    key = jax.random.key(8)
    eager = frontends.frequency_mask(key, feats, 102)
    jitted = jax.jit(frontends.frequency_mask, static_argnums=2)(key, feats, 102)
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(eager))
