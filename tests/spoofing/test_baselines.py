"""The LFCC-GMM baseline against independent computations (SciPy densities, hand-counted EERs)."""
import numpy as np
import pytest
import soundfile as sf
from scipy.special import logsumexp
from scipy.stats import norm

from darts_jax.data.protocols import load_partition
from darts_jax.nn.frontends import lfcc
from darts_jax.spoofing.baselines import (DiagonalGmm, GmmConfig, baseline_section, fit_lfcc_gmms, gmm_scores,
                                          lfcc_frames)
from darts_jax.spoofing.metrics import evaluate_scores
from darts_jax.spoofing.scores import utterance_scores


def _scipy_log_likelihood(gmm, frames_NxD):
    per_component = [gmm.log_weights_K[k] + norm.logpdf(frames_NxD, gmm.means_KxD[k], np.sqrt(gmm.vars_KxD[k])).sum(1)
                     for k in range(len(gmm.log_weights_K))]
    return logsumexp(np.stack(per_component, axis=1), axis=1)


def _two_clusters(rng, n=4000):
    first = rng.normal([-4.0, 2.0], [0.5, 1.0], (int(0.3 * n), 2))
    second = rng.normal([5.0, -1.0], [1.5, 0.3], (n - len(first), 2))
    return np.concatenate([first, second])


def test_em_recovers_two_separated_clusters():
    gmm = DiagonalGmm(_two_clusters(np.random.default_rng(0)), 2, 30, np.random.default_rng(1))
    order = np.argsort(gmm.means_KxD[:, 0])
    np.testing.assert_allclose(gmm.means_KxD[order], [[-4.0, 2.0], [5.0, -1.0]], atol=0.1)
    np.testing.assert_allclose(np.sqrt(gmm.vars_KxD[order]), [[0.5, 1.0], [1.5, 0.3]], rtol=0.06)
    np.testing.assert_allclose(np.exp(gmm.log_weights_K[order]), [0.3, 0.7], atol=0.01)


def test_log_likelihood_and_scores_match_scipy():
    rng = np.random.default_rng(2)
    bona = DiagonalGmm(rng.normal(0.0, 1.0, (500, 3)), 4, 5, rng)
    spoof = DiagonalGmm(rng.normal(0.5, 2.0, (500, 3)), 3, 5, rng)
    feats_UxTxD = rng.normal(0.2, 1.5, (6, 7, 3))
    frames = feats_UxTxD.reshape(-1, 3)
    np.testing.assert_allclose(bona.log_likelihood(frames), _scipy_log_likelihood(bona, frames), rtol=1e-10)
    expected = (_scipy_log_likelihood(bona, frames) - _scipy_log_likelihood(spoof, frames)).reshape(6, 7).mean(1)
    np.testing.assert_allclose(gmm_scores(bona, spoof, feats_UxTxD), expected, rtol=1e-10)


class _Utt:
    def __init__(self, index, label, attack):
        self.utt_id, self.label, self.attack = f"u{index}", label, attack


def test_per_utterance_scores_pool_and_split_by_attack():
    # Bona fide 1..4; A01's spoofs all score below them (EER 0), A02's all above (EER 100).
    values = np.array([1.0, 2.0, 3.0, 4.0, -1.0, -2.0, 9.0, 8.0])
    labels_attacks = [(1, "-")] * 4 + [(0, "A01")] * 2 + [(0, "A02")] * 2
    scores = utterance_scores([_Utt(i, *la) for i, la in enumerate(labels_attacks)], values)
    assert list(scores.utt_ids[:2]) == ["u0", "u1"] and list(scores.labels) == [1, 1, 1, 1, 0, 0, 0, 0]
    report = evaluate_scores(scores)
    assert report["per_attack"]["A01"]["eer_percent"] == 0.0 and report["per_attack"]["A02"]["eer_percent"] == 100.0
    assert report["eer_percent"] == pytest.approx(50.0)


def test_too_few_frames_for_the_components_is_refused():
    feats = np.zeros((2, 3, 60), np.float32)
    with pytest.raises(ValueError, match="fewer than the 64 components"):
        fit_lfcc_gmms(feats, np.array([1, 0]), GmmConfig())


def test_lfcc_frames_are_the_front_end_on_the_repeat_padded_start(tiny_corpus):
    utts = load_partition(tiny_corpus, "dev")[:3]
    feats = lfcc_frames(utts, batch_size=2, num_samples=8000)
    for utt, got in zip(utts, feats):
        wave, _ = sf.read(utt.path, dtype="float32")
        # float32 features of another batch shape and fusion: equal to rounding, a wrong file or crop is O(1) off.
        np.testing.assert_allclose(got, np.asarray(lfcc(np.resize(wave, 8000)[None]))[0], rtol=1e-4, atol=1e-4)


def test_section_names_the_better_system():
    metrics = {"eer_percent": 20.0, "per_attack": {"A07": {"eer_percent": 10.0}}}

    def gmm(pooled):
        return {"eer_percent": pooled, "per_attack": {"A07": {"eer_percent": 5.0}}}

    lines = baseline_section(metrics, gmm(30.0))
    assert "| A07 | 10.00 | 5.00 |" in lines and any("is below the GMM" in line for line in lines)
    assert any("is not below" in line for line in baseline_section(metrics, gmm(15.0)))
