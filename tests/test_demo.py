"""The demo's LFCC-GMM baseline is fitted once per workdir and refitted when its settings or corpus change."""
import dataclasses

import pytest

from darts_jax import demo
from darts_jax.spoofing.baselines import GmmConfig


def test_gmm_baseline_is_cached_with_its_settings(tmp_path, monkeypatch):
    fits = []

    def fake_baseline(data, partitions, config):
        fits.append(config)
        return {"eval": {"eer_percent": 30.0 + len(fits), "per_attack": {"A07": {"eer_percent": 10.0}}}}

    monkeypatch.setattr(demo, "lfcc_gmm_baseline", fake_baseline)
    path, config, corpus = tmp_path / "lfcc-gmm.json", GmmConfig(components=8), {"size": "small", "seed": 0}
    first = demo._cached_gmm(path, tmp_path, config, corpus)
    assert demo._cached_gmm(path, tmp_path, config, corpus) == first
    assert first == {"eer_percent": 31.0, "per_attack": {"A07": {"eer_percent": 10.0}}}
    assert len(fits) == 1
    other = dataclasses.replace(config, num_samples=16000)
    assert demo._cached_gmm(path, tmp_path, other, corpus)["eer_percent"] == pytest.approx(32.0)
    assert demo._cached_gmm(path, tmp_path, other, {"size": "small", "seed": 1})["eer_percent"] == pytest.approx(33.0)
    assert fits == [config, other, other]
