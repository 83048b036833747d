import numpy as np
import pytest

from darts_jax.spoofing.classification import balanced_accuracy, error_rates, hter, pad_error_rates, roc_auc


def test_roc_auc_equals_the_pairwise_count_with_ties_as_halves():
    rng = np.random.default_rng(0)
    bona = rng.integers(0, 6, size=40).astype(float)   # small integers: many ties
    attack = rng.integers(0, 4, size=30).astype(float)
    pairs = bona[:, None] - attack[None, :]
    expected = (np.count_nonzero(pairs > 0) + 0.5 * np.count_nonzero(pairs == 0)) / pairs.size
    assert roc_auc(bona, attack) == pytest.approx(expected, abs=1e-12)


def test_roc_auc_of_separated_and_reversed_scores():
    assert roc_auc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert roc_auc([1.0, 2.0], [3.0, 4.0]) == 0.0


def test_rates_count_scores_at_the_threshold_as_rejected():
    # bona 0.2 and 0.5 (= threshold) rejected of 4; attacks 0.7 accepted of 3.
    far, frr = error_rates([0.2, 0.5, 0.8, 0.9], [0.1, 0.5, 0.7], threshold=0.5)
    assert (far, frr) == (pytest.approx(1 / 3), pytest.approx(2 / 4))
    assert hter([0.2, 0.5, 0.8, 0.9], [0.1, 0.5, 0.7], 0.5) == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert balanced_accuracy([0.2, 0.5, 0.8, 0.9], [0.1, 0.5, 0.7], 0.5) == pytest.approx(1 - (1 / 3 + 1 / 2) / 2)


def test_acer_takes_the_worst_species_not_the_pooled_rate():
    bona = np.array([0.9, 0.8, 0.7, 0.1])                        # BPCER at 0.5: 1 / 4
    attacks = {"print": np.array([0.0, 0.1, 0.2, 0.3]),          # APCER 0
               "replay": np.array([0.6, 0.9, 0.1, 0.2])}         # APCER 2 / 4
    rates = pad_error_rates(bona, attacks, threshold=0.5)
    assert rates.apcer_per_species == {"print": 0.0, "replay": 0.5}
    assert rates.apcer == 0.5 and rates.bpcer == 0.25 and rates.acer == pytest.approx(0.375)


def test_empty_or_non_finite_scores_are_refused_with_the_argument_named():
    with pytest.raises(ValueError, match="attack_scores is empty"):
        roc_auc([1.0], [])
    with pytest.raises(ValueError, match="bona_scores contains NaN"):
        hter([np.nan], [0.0], 0.0)
    with pytest.raises(ValueError, match="attack_scores_by_species is empty"):
        pad_error_rates([1.0], {}, 0.0)
