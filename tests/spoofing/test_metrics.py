"""EER, min t-DCF, per-attack split and accuracy on score sets small enough to check by hand.

Conventions of the official routine used in the hand derivations below: the trials are sorted
(stable, bona fide before spoof on ties); DET point i rejects the i lowest trials, point 0 rejects
none; EER = mean(FRR, FAR) at the first index minimising |FRR - FAR|.
"""
import numpy as np
import pytest

from darts_jax.spoofing.metrics import (AsvErrorRates, CostModel, accuracy, asv_error_rates, compute_eer,
                               compute_min_tdcf, det_curve, evaluate_scores, format_report)
from darts_jax.spoofing.scores import AsvScores, cm_trials

# Sorted: .1s .2b .3s .4s .6b .7b .8s .9b. Points (FRR, FAR): (0,1) (0,.75) (.25,.75) (.25,.5) (.25,.25)
# (.5,.25) (.75,.25) (.75,0) (1,0). |FRR - FAR| first reaches 0 at point 4, threshold = 4th sorted score.
BONA = np.array([0.2, 0.6, 0.7, 0.9])
SPOOF = np.array([0.1, 0.3, 0.4, 0.8])

# ASV: sorted 0n 1n 2n 3t 3.5n 4t 5t 6t, EER point 4 (.25, .25) at threshold 3. The error rates then
# accept score >= 3: P_fa = 1/4 (3.5), P_miss = 0 (target 3 is accepted although the EER curve rejected it).
# C1 = 0.9405 * (1 - 0) - 0.0095 * 10 * 0.25 = 0.91675.
ASV_TARGET = np.array([3.0, 4.0, 5.0, 6.0])
ASV_NONTARGET = np.array([0.0, 1.0, 2.0, 3.5])
C1 = 0.91675


def test_eer_without_ties():
    eer, threshold = compute_eer(BONA, SPOOF)
    assert eer == 0.25
    assert threshold == 0.4


def test_eer_of_separated_classes_is_zero():
    eer, threshold = compute_eer([3.0, 4.0, 5.0, 6.0], [0.0, 1.0, 2.0, 2.5])
    assert (eer, threshold) == (0.0, 2.5)


def test_eer_ties_across_classes_put_bona_fide_first():
    # Sorted 0s 1s 2b 2b 2s 2s 3b 4b: points (0,1) (0,.75) (0,.5) (.25,.5) (.5,.5) -> EER .5 at 2.
    # Spoof-first tie order would give 0, and one point per distinct score would give .25.
    assert compute_eer([2.0, 2.0, 3.0, 4.0], [0.0, 1.0, 2.0, 2.0]) == (0.5, 2.0)


def test_eer_of_a_constant_scorer_is_one():
    # Sorted b b s s: points (0,1) (.5,1) (1,1) (1,.5) (1,0) -> the only zero gap is at (1,1).
    assert compute_eer([5.0, 5.0], [5.0, 5.0]) == (1.0, 5.0)


def test_eer_first_minimum_wins():
    # Sorted .1s .2b .3s .6b .7b .9b: points (0,1) (0,.5) (.25,.5) (.25,0): gaps .25 at points 2 and 3,
    # the first is taken: EER = (.25 + .5) / 2.
    assert compute_eer(BONA, [0.1, 0.3]) == (0.375, 0.2)


def test_eer_does_not_depend_on_trial_order():
    rng = np.random.default_rng(0)
    bona = rng.integers(0, 6, 200).astype(float)
    spoof = rng.integers(-3, 3, 300).astype(float)
    expected = compute_eer(bona, spoof)
    for _ in range(5):
        assert compute_eer(rng.permutation(bona), rng.permutation(spoof)) == expected


def test_eer_without_ties_matches_the_threshold_definition():
    # With distinct scores, point i is threshold t = i-th sorted score with FRR = P(bona <= t) and
    # FAR = P(spoof > t); point 0 is t = min - 0.001.
    rng = np.random.default_rng(1)
    bona, spoof = rng.normal(1, 1, 50), rng.normal(0, 1, 70)
    pooled = np.sort(np.concatenate([bona, spoof]))
    thresholds = np.concatenate([[pooled[0] - 0.001], pooled])
    frr = np.array([np.mean(bona <= t) for t in thresholds])
    far = np.array([np.mean(spoof > t) for t in thresholds])
    best = np.argmin(np.abs(frr - far))
    eer, threshold = compute_eer(bona, spoof)
    assert eer == (frr[best] + far[best]) / 2
    assert threshold == thresholds[best]


def test_det_curve_endpoints():
    frr, far, thresholds = det_curve(BONA, SPOOF)
    assert frr.shape == far.shape == thresholds.shape == (9,)
    assert (frr[0], far[0], frr[-1], far[-1]) == (0.0, 1.0, 1.0, 0.0)
    assert thresholds[0] == pytest.approx(0.1 - 0.001)


@pytest.mark.parametrize("bona, spoof, match", [
    ([], [1.0], "bona_scores is empty"),
    ([1.0], [], "spoof_scores is empty"),
    ([1.0, np.nan], [0.0], "NaN or infinite"),
    ([[1.0]], [0.0], "1-D"),
])
def test_eer_rejects_bad_input(bona, spoof, match):
    with pytest.raises(ValueError, match=match):
        compute_eer(bona, spoof)


def test_cost_model_defaults_are_the_2019_plan():
    m = CostModel()
    assert (m.p_spoof, m.p_tar, m.p_non) == (0.05, 0.9405, 0.0095)
    assert (m.c_miss_asv, m.c_fa_asv, m.c_miss_cm, m.c_fa_cm) == (1, 10, 1, 10)


def test_cost_model_checks():
    with pytest.raises(ValueError, match="sum to 1"):
        CostModel(p_spoof=0.1)
    with pytest.warns(UserWarning, match="negative cost"):
        CostModel(c_fa_cm=-1.0)


def test_asv_error_rates_at_the_eer_threshold():
    rates = asv_error_rates(ASV_TARGET, ASV_NONTARGET, [1.0, 2.0, 3.0, 4.0])
    assert rates == AsvErrorRates(p_fa=0.25, p_miss=0.0, p_miss_spoof=0.5)


def test_asv_error_rates_need_spoof_trials():
    with pytest.raises(ValueError, match="ASV scores of spoofed trials"):
        asv_error_rates(ASV_TARGET, ASV_NONTARGET, [])


# CM curve (P_miss, P_fa) of BONA/SPOOF is listed at the top of the file.
@pytest.mark.parametrize("asv_spoof, expected", [
    # P_miss_spoof = 1/2 -> C2 = 10 * .05 * .5 = .25 < C1; t(s) = (C1/C2) P_miss + P_fa, minimum at
    # (0, .75): 0.75.
    ([1.0, 2.0, 3.0, 4.0], 0.75),
    # P_miss_spoof = 0 -> C2 = .5 < C1; t(s) = 1.8335 P_miss + P_fa, minimum at (.25, .25).
    ([3.0, 4.0, 5.0, 6.0], (C1 * 0.25 + 0.5 * 0.25) / 0.5),
])
def test_min_tdcf_by_hand(asv_spoof, expected):
    rates = asv_error_rates(ASV_TARGET, ASV_NONTARGET, asv_spoof)
    assert compute_min_tdcf(BONA, SPOOF, rates) == pytest.approx(expected, rel=1e-12)


def test_min_tdcf_normalises_by_c1_when_it_is_smaller():
    # ASV sorted 0t 1t 2n 3n 4t 5t 6n 7n: EER point 4 (.5, .5) at threshold 3; P_fa = 3/4 (3, 6, 7),
    # P_miss = 1/2. C1 = .9405 * .5 - .095 * .75 = .399 < C2 = .5: t(s) = P_miss + (C2/C1) P_fa,
    # minimum at (.25, .25).
    rates = asv_error_rates([0.0, 1.0, 4.0, 5.0], [2.0, 3.0, 6.0, 7.0], [5.0, 6.0, 7.0, 8.0])
    assert rates == (0.75, 0.5, 0.0)
    assert compute_min_tdcf(BONA, SPOOF, rates) == pytest.approx(0.25 * (0.399 + 0.5) / 0.399, rel=1e-12)


def test_min_tdcf_does_not_depend_on_trial_order():
    rng = np.random.default_rng(2)
    bona, spoof = rng.integers(0, 8, 120).astype(float), rng.integers(-4, 4, 200).astype(float)
    rates = asv_error_rates(rng.normal(2, 1, 60), rng.normal(0, 1, 60), rng.normal(1, 1, 60))
    expected = compute_min_tdcf(bona, spoof, rates)
    assert compute_min_tdcf(rng.permutation(bona), rng.permutation(spoof), rates) == expected


@pytest.mark.parametrize("bona, spoof, rates, match", [
    ([1.0, 1.0], [0.0, 0.0], AsvErrorRates(0.25, 0.0, 0.5), "soft scores"),
    (BONA, SPOOF, AsvErrorRates(0.25, 1.0, 0.5), "negative"),
    (BONA, SPOOF, AsvErrorRates(0.25, 0.0, 1.0), "ASV rejects every spoof"),
])
def test_min_tdcf_checks(bona, spoof, rates, match):
    with pytest.raises(ValueError, match=match):
        compute_min_tdcf(bona, spoof, rates)


def test_accuracy():
    # Threshold .5: bona .6 .7 .9 and spoof .1 .3 .4 are on the right side: 6 of 8.
    assert accuracy(BONA, SPOOF, threshold=0.5) == 0.75
    # A score equal to the threshold counts as spoof, like argmax of tied logits picking class 0.
    assert accuracy([0.0], [0.0]) == 0.5


def _cm_trials():
    attacks = ["-"] * 4 + ["A01", "A02", "A01", "A02"]
    keys = ["bonafide"] * 4 + ["spoof"] * 4
    scores = np.concatenate([BONA, SPOOF])
    utt_ids = [f"U{i}" for i in range(8)]
    return cm_trials(np.array(utt_ids), np.array(attacks), np.array(keys), scores)


def _asv_trials():
    # Spoof trials: A01 at 1 and 5 (P_miss_spoof 1/2), A02 at 3 and 4 (P_miss_spoof 0); pooled 1/4.
    sources = ["bonafide"] * 8 + ["A01", "A01", "A02", "A02"]
    keys = ["target"] * 4 + ["nontarget"] * 4 + ["spoof"] * 4
    scores = np.concatenate([ASV_TARGET, ASV_NONTARGET, [1.0, 5.0, 3.0, 4.0]])
    return AsvScores(np.array(sources), np.array(keys), scores)


def test_per_attack_split_without_asv():
    result = evaluate_scores(_cm_trials())
    assert result["eer_percent"] == 25.0
    assert result["min_tdcf"] is None
    assert (result["bonafide_trials"], result["spoof_trials"]) == (4, 4)
    # A01 = spoofs .1 .3: the first-minimum case above, 37.5 %. A02 = spoofs .4 .8: sorted
    # .2b .4s .6b .7b .8s .9b, points (0,1) (.25,1) (.25,.5) (.5,.5) -> 50 %.
    assert result["per_attack"] == {
        "A01": {"eer_percent": 37.5, "min_tdcf": None, "spoof_trials": 2},
        "A02": {"eer_percent": 50.0, "min_tdcf": None, "spoof_trials": 2},
    }


def test_per_attack_tdcf_uses_that_attacks_asv_spoofs():
    result = evaluate_scores(_cm_trials(), _asv_trials())
    tar, non = ASV_TARGET, ASV_NONTARGET
    assert result["min_tdcf"] == compute_min_tdcf(BONA, SPOOF, asv_error_rates(tar, non, [1.0, 5.0, 3.0, 4.0]))
    assert result["per_attack"]["A01"]["min_tdcf"] == compute_min_tdcf(
        BONA, [0.1, 0.3], asv_error_rates(tar, non, [1.0, 5.0]))
    # A02: C2 = .5 (ASV accepts both A02 spoofs), t(s) = 1.8335 P_miss + P_fa over the A02 curve above;
    # minimum at (.25, .5).
    assert result["per_attack"]["A02"]["min_tdcf"] == pytest.approx((C1 * 0.25 + 0.5 * 0.5) / 0.5, rel=1e-12)


def test_per_attack_tdcf_needs_the_attack_in_the_asv_scores():
    asv = _asv_trials()
    asv = AsvScores(np.where(asv.sources == "A02", "A03", asv.sources), asv.keys, asv.scores)
    with pytest.raises(ValueError, match="no spoof trials of attack A02"):
        evaluate_scores(_cm_trials(), asv)


def test_format_report():
    without_asv = format_report(evaluate_scores(_cm_trials()))
    assert "no ASV scores" in without_asv
    assert "25.00000 %" in without_asv
    rows = [line.split() for line in without_asv.splitlines() if line.startswith("A0")]
    assert rows == [["A01", "2", "37.50000", "-"], ["A02", "2", "50.00000", "-"]]
    with_asv = format_report(evaluate_scores(_cm_trials(), _asv_trials()))
    assert "no ASV scores" not in with_asv


def test_attack_whose_spoofs_the_asv_always_rejects_gets_no_tdcf_but_the_rest_do():
    import warnings as _warnings

    from darts_jax.spoofing.metrics import evaluate_scores
    from darts_jax.spoofing.scores import AsvScores, cm_trials

    cm = cm_trials(np.array(["b1", "b2", "b3", "s1", "s2", "s3", "s4"]),
                  np.array(["-", "-", "-", "A07", "A07", "A08", "A08"]),
                  np.array(["bonafide"] * 3 + ["spoof"] * 4), np.array([3.0, 2.5, 1.0, 0.5, 2.0, -1.0, 0.0]))
    # A07's ASV spoof scores sit below every target score, so the ASV rejects all of them: C2 = 0.
    asv = AsvScores(np.array(["bonafide"] * 4 + ["A07", "A07", "A08", "A08"]),
                    np.array(["target", "target", "nontarget", "nontarget", "spoof", "spoof", "spoof", "spoof"]),
                    np.array([5.0, 4.0, 0.0, 1.0, -3.0, -2.0, 4.5, 6.0]))
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        result = evaluate_scores(cm, asv)
    assert result["per_attack"]["A07"]["min_tdcf"] is None
    assert any("A07" in str(w.message) for w in caught)
    assert result["per_attack"]["A08"]["min_tdcf"] is not None and result["min_tdcf"] is not None
