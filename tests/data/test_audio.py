"""Audio decoding, every bad-audio error, and the fixed-length cuts of spec §5.1."""
import numpy as np
import pytest
import soundfile as sf

from darts_jax.data.audio import fix_length, load_audio


def write_audio(path, samples_int16, rate=16000, **kwargs):
    sf.write(path, samples_int16, rate, subtype="PCM_16", **kwargs)
    return path


@pytest.fixture
def speech_int16():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(12345) * 3000).astype(np.int16)


@pytest.mark.parametrize("suffix", [".flac", ".wav"])
def test_load_audio_reads_float32_in_unit_range(tmp_path, speech_int16, suffix):
    wave = load_audio(write_audio(tmp_path / f"a{suffix}", speech_int16))
    assert wave.dtype == np.float32 and wave.shape == speech_int16.shape
    np.testing.assert_array_equal(wave, speech_int16.astype(np.float32) / 32768.0)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.flac: audio file not found"):
        load_audio(tmp_path / "nothing.flac")


def test_truncated_flac(tmp_path, speech_int16):
    path = write_audio(tmp_path / "a.flac", speech_int16)
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])
    with pytest.raises(ValueError, match=f"{path}: .*truncated"):
        load_audio(path)


def test_unreadable_file(tmp_path):
    path = tmp_path / "a.flac"
    path.write_bytes(b"not audio at all" * 20)
    with pytest.raises(ValueError, match=f"{path}: cannot decode the audio"):
        load_audio(path)


def test_wrong_sample_rate_is_an_error_unless_resampling_is_asked(tmp_path):
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    path = write_audio(tmp_path / "a.flac", tone, rate=8000)
    with pytest.raises(ValueError, match=f"{path}: sampled at 8000 Hz, expected 16000 Hz"):
        load_audio(path)
    wave = load_audio(path, resample=True)
    assert wave.dtype == np.float32 and wave.size == 16000
    spectrum = np.abs(np.fft.rfft(wave))
    assert np.argmax(spectrum) == 440  # 1 Hz bins over one second: still a 440 Hz tone


def test_several_channels(tmp_path, speech_int16):
    path = write_audio(tmp_path / "a.flac", np.stack([speech_int16, speech_int16], axis=1))
    with pytest.raises(ValueError, match=f"{path}: 2 channels; expected mono"):
        load_audio(path)


def _float_wav(path, samples):
    sf.write(path, np.asarray(samples, np.float32), 16000, subtype="FLOAT")
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: write_audio(p.with_suffix(".flac"), np.full(10, 500, np.int16)),
     "only 10 samples (0.6 ms); at least 320 (20 ms) are needed"),
    (lambda p: _float_wav(p, np.r_[np.full(400, 0.1), np.nan, np.zeros(99)]), "1 NaN or infinite samples (first at "
                                                                               "sample 400)"),
    (lambda p: _float_wav(p, np.r_[np.full(400, 0.1), np.inf, -np.inf]), "2 NaN or infinite samples"),
    (lambda p: write_audio(p.with_suffix(".flac"), np.zeros(4000, np.int16)), "every sample is zero"),
    (lambda p: _float_wav(p, np.r_[np.full(400, 0.1), 1.5]), "samples reach 1.5, outside [-1, 1]"),
    (lambda p: write_audio(p.with_suffix(".flac"), np.full(4000, 500, np.int16), format="WAV"),
     "holds WAV audio under a .flac name"),
])
def test_samples_no_detector_should_see_are_refused_naming_the_file(tmp_path, make, message):
    path = make(tmp_path / "bad.wav")
    with pytest.raises(ValueError) as raised:
        load_audio(path)
    assert str(raised.value).startswith(f"{path}: ") and message in str(raised.value)


def test_a_folder_is_not_an_audio_file(tmp_path):
    with pytest.raises(IsADirectoryError, match=f"{tmp_path}: is a folder, not an audio file"):
        load_audio(tmp_path)


def test_the_rate_error_names_a_remedy_that_exists(tmp_path, speech_int16):
    path = write_audio(tmp_path / "a.flac", speech_int16, rate=8000)
    with pytest.raises(ValueError) as raised:
        load_audio(path)
    assert "resample=True" not in str(raised.value) and "resample the corpus to 16000 Hz first" in str(raised.value)


def test_empty_audio(tmp_path):
    path = write_audio(tmp_path / "a.wav", np.zeros(0, np.int16))
    with pytest.raises(ValueError, match=f"{path}: contains no audio samples"):
        load_audio(path)


def test_fix_length_repeats_short_signals_then_keeps_the_start():
    wave = np.arange(1, 8, dtype=np.float32)
    np.testing.assert_array_equal(fix_length(wave, 17), np.concatenate([wave, wave, wave[:3]]))
    np.testing.assert_array_equal(fix_length(wave, 4), wave[:4])
    np.testing.assert_array_equal(fix_length(wave, 7), wave)


def test_fix_length_random_crop():
    wave = np.arange(100, dtype=np.float32)
    crops = [fix_length(wave, 30, np.random.default_rng(seed)) for seed in range(20)]
    starts = {int(crop[0]) for crop in crops}
    for crop in crops:
        np.testing.assert_array_equal(crop, np.arange(crop[0], crop[0] + 30))
    assert len(starts) > 5 and min(starts) >= 0 and max(starts) <= 70
    np.testing.assert_array_equal(fix_length(wave, 30, np.random.default_rng(3)), crops[3])
    # A short signal has nothing to crop: it is repeat-padded as without an rng.
    np.testing.assert_array_equal(fix_length(wave[:10], 25, np.random.default_rng(0)), fix_length(wave[:10], 25))


def test_fix_length_rejects_empty_or_multichannel():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        fix_length(np.zeros(0, np.float32), 10)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        fix_length(np.zeros((2, 10), np.float32), 10)


def test_trim_finds_known_silence_boundaries():
    from darts_jax.data.audio import speech_bounds, trim_silence

    rng = np.random.default_rng(0)
    rate, pad = 16000, 480  # 20 ms frames (320 samples), 30 ms padding
    lead, speech, trail = 8000, 16000, 4800  # 0.5 s, 1 s, 0.3 s: the tone starts and ends on frame edges
    t = np.arange(speech) / rate
    wave = np.concatenate([1e-4 * rng.standard_normal(lead), 0.5 * np.sin(2 * np.pi * 300 * t),
                           1e-4 * rng.standard_normal(trail)]).astype(np.float32)
    start, stop = speech_bounds(wave, rate)
    assert (start, stop) == (lead - pad, lead + speech + pad)
    np.testing.assert_array_equal(trim_silence(wave, rate), wave[lead - pad:lead + speech + pad])
    # A quieter tail within 35 dB of the loudest frame is speech too; one 40 dB down is not.
    for gain, kept in ((10 ** (-30 / 20), True), (10 ** (-40 / 20), False)):
        tail = np.concatenate([wave[:lead + speech], gain * 0.5 * np.sin(2 * np.pi * 300 * t[:3200]),
                               wave[lead + speech:]]).astype(np.float32)
        assert (speech_bounds(tail, rate)[1] > lead + speech + pad) == kept
    # Speech to the very end keeps the end; no silence at all keeps everything.
    assert speech_bounds(wave[:lead + speech], rate) == (lead - pad, lead + speech)
    assert speech_bounds(wave[lead:lead + speech], rate) == (0, speech)


def test_the_loader_trims_before_the_fixed_length_cut(tmp_path):
    from darts_jax.data.audio import trim_silence
    from darts_jax.data.loader import BatchLoader
    from darts_jax.data.protocols import Utterance

    rng = np.random.default_rng(1)
    samples = np.concatenate([np.zeros(8000), rng.standard_normal(4000) * 3000, np.zeros(8000)]).astype(np.int16)
    samples[:8000] = rng.integers(-2, 3, 8000)  # a faint noise floor, not digital silence
    path = write_audio(tmp_path / "a.flac", samples)
    utterances = [Utterance("a", "S", "-", 1, path)]
    trimmed = next(iter(BatchLoader(utterances, 1, trim_silence=True, num_samples=16000).one_pass()))
    plain = next(iter(BatchLoader(utterances, 1, num_samples=16000).one_pass()))
    expected = fix_length(trim_silence(load_audio(path)), 16000)
    np.testing.assert_array_equal(trimmed.wave_BxS[0], expected)
    assert not np.array_equal(plain.wave_BxS[0], expected)
