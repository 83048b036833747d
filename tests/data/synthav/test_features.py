"""The SynthAV spectrogram, the feature cache's tap columns, and the resumable in-memory loader."""
import numpy as np
import pytest

from darts_jax.data.synthav.features import (HOP, N_FFT, SPECTROGRAM_BANDS, SPECTROGRAM_FRAMES, FeatureLoader,
                                             load_features, log_spectrogram, save_features, tap_columns)


def test_a_tone_peaks_in_its_band():
    rate = 16000
    times = np.arange(rate) / rate
    tones = np.stack([np.sin(2 * np.pi * hz * times) for hz in (440.0, 3000.0)])
    spectrogram = log_spectrogram(tones)
    assert spectrogram.shape == (2, SPECTROGRAM_FRAMES, SPECTROGRAM_BANDS)
    bin_hz = rate / N_FFT
    bins_per_band = (N_FFT // 2) // SPECTROGRAM_BANDS
    for row, hz in enumerate((440.0, 3000.0)):
        expected_band = int(round(hz / bin_hz)) // bins_per_band
        middle = spectrogram[row, 10:-10]
        assert np.all(middle.argmax(axis=-1) == expected_band)


def test_frames_follow_the_hop():
    # A click at 0.5 s lands in the frame whose centre is nearest (frame m is centred on sample m * HOP).
    wave = np.zeros((1, 16000))
    wave[0, 8000] = 1.0
    energy = log_spectrogram(wave)[0].mean(axis=-1)
    assert abs(int(energy.argmax()) - 8000 // HOP) <= 1


def _loader(n=10, batch=4, seed=0, shuffle=True):
    features = np.arange(n, dtype=np.float32)[:, None, None] * np.ones((1, 2, 3), np.float32)
    labels = np.arange(n) % 2
    return FeatureLoader(features, labels, np.array(["RVRA", "LS"] * (n // 2)), np.array([f"c{i}" for i in range(n)]),
                         batch, seed=seed, shuffle=shuffle)


def test_an_epoch_covers_distinct_clips_and_resuming_continues_exactly():
    loader = _loader()
    stream = iter(loader)
    first_epoch = [next(stream) for _ in range(loader.steps_per_epoch)]
    seen = np.concatenate([b.wave_BxS[:, 0, 0] for b in first_epoch]).astype(int)
    assert len(set(seen)) == len(seen) == 8  # 2 batches of 4, no clip twice
    for batch in first_epoch:
        assert np.array_equal(batch.label_B, batch.wave_BxS[:, 0, 0].astype(int) % 2)
    next(stream)
    saved = loader.state()
    expected = [next(stream).utt_ids for _ in range(3)]
    resumed = _loader()
    resumed.restore(saved)
    resumed_stream = iter(resumed)
    assert [next(resumed_stream).utt_ids for _ in range(3)] == expected
    with pytest.raises(ValueError, match="batch_size"):
        _loader(batch=2).restore(saved)


def test_one_pass_is_in_order_with_padding_rows_marked():
    batches = list(_loader(batch=4, shuffle=False).one_pass())
    assert len(batches) == 3
    valid = np.concatenate([b.valid_B for b in batches])
    assert valid.sum() == 10 and not valid[10:].any()
    ids = [u for b in batches for u, v in zip(b.utt_ids, b.valid_B) if v]
    assert ids == [f"c{i}" for i in range(10)]
    assert batches[-1].attacks[-1] == ""


def test_tap_columns_pick_each_taps_channels(tmp_path):
    meta = {"taps": ["v1", "a1", "a2"], "tap_channels": [2, 3, 1]}
    assert tap_columns(meta, ["a2", "v1"]).tolist() == [5, 0, 1]
    with pytest.raises(ValueError, match=r"\['v9'\]"):
        tap_columns(meta, ["v9"])
    path = tmp_path / "features" / "x.npz"
    split = {"features": np.ones((2, 8, 6), np.float32), "labels": np.array([1, 0]),
             "categories": np.array(["RVRA", "LS"]), "clip_ids": np.array(["a", "b"])}
    save_features(path, {"dev": split}, meta["taps"], meta["tap_channels"], {"length": 8})
    loaded_meta, loaded = load_features(path)
    assert loaded_meta["taps"] == meta["taps"] and loaded_meta["length"] == 8
    assert np.array_equal(loaded["dev"]["features"], split["features"])
    assert all(np.array_equal(loaded["dev"][key], split[key]) for key in split)
    _, only_categories = load_features(path, ("categories",))
    assert list(only_categories["dev"]) == ["categories"]
    assert only_categories["dev"]["categories"].tolist() == ["RVRA", "LS"]
    assert load_features(path, ())[1] == {"dev": {}}
    with pytest.raises(FileNotFoundError, match="pretrain-backbones"):
        load_features(tmp_path / "features" / "missing.npz")
