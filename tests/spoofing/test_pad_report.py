"""PAD figures at a dev-fixed threshold, on examples small enough to count by hand."""
import numpy as np
import pytest

from darts_jax.spoofing.pad_report import depth_separation, pad_report, split_figures


def test_split_figures_by_hand():
    # Threshold 0.5, accepted when score > 0.5. Live: 0.9, 0.7, 0.4 -> one of 3 rejected (BPCER 1/3).
    # Print: 0.2, 0.6 -> one of 2 accepted (1/2); replay: 0.1, 0.3, 0.8, 0.9 -> 2 of 4 (1/2); pooled 3/6.
    scores = [0.9, 0.7, 0.4, 0.2, 0.6, 0.1, 0.3, 0.8, 0.9]
    labels = [1, 1, 1, 0, 0, 0, 0, 0, 0]
    attacks = ["live"] * 3 + ["print"] * 2 + ["replay"] * 4
    figures = split_figures(scores, labels, attacks, 0.5)
    assert figures["apcer_per_species"] == {"print": 0.5, "replay": 0.5}
    assert figures["bpcer"] == pytest.approx(1 / 3) and figures["apcer"] == 0.5
    assert figures["acer"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert figures["hter"] == pytest.approx((3 / 6 + 1 / 3) / 2)
    # AUC: pairs (live > attack) over 18, ties one half. 0.9 beats 5 and ties 1; 0.7 beats 4; 0.4 beats 3.
    assert figures["auc"] == pytest.approx((5.5 + 4 + 3) / 18)
    worst = split_figures(scores[:5] + [0.95, 0.3, 0.8, 0.9], labels, attacks, 0.5)
    assert worst["apcer"] == 0.75  # the worst species, not the pooled 4/6


def test_report_fixes_the_threshold_on_dev():
    dev = {"score": np.array([0.8, 0.9, 0.7, 0.1, 0.2, 0.3]), "label": np.array([1, 1, 1, 0, 0, 0]),
           "attack": np.array(["live"] * 3 + ["print"] * 3)}
    shifted = {**dev, "score": dev["score"] + 0.45}  # a domain shift: every score higher
    report = pad_report({"dev": dev, "test": shifted})
    assert report["dev_eer"] == 0.0 and 0.3 <= report["threshold"] < 0.7
    # The dev threshold is kept: the shifted attacks above it are accepted, though the test AUC is 1.
    accepted = np.mean(shifted["score"][3:] > report["threshold"])
    assert report["test"]["hter"] == pytest.approx(accepted / 2) and report["test"]["auc"] == 1.0
    with pytest.raises(ValueError, match="threshold is fixed"):
        pad_report({"test": shifted})
    assert depth_separation([0.5, 0.6, 0.0, 0.1], [1, 1, 0, 0]) == {"depth_auc": 1.0}
    with pytest.raises(ValueError, match="both live"):
        depth_separation([0.5, 0.6], [1, 1])
