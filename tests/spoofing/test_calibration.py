"""Calibrated scores (issue 16 items 1 and 5): ASVspoof 5 metrics, score -> LLR calibration, fusion."""
import json
import math

import numpy as np
import pytest

from darts_jax import cli
from darts_jax.spoofing.calibration import (
    calibrate_scores,
    fit_logistic,
    read_calibration,
)
from darts_jax.spoofing.metrics import (
    DcfCosts,
    compute_act_dcf,
    compute_cllr,
    compute_min_cllr,
    compute_min_dcf,
    evaluate_scores,
)
from darts_jax.spoofing.scores import cm_trials, read_cm_scores, write_cm_scores


def gaussian_trials(rng, n_bona, n_spoof, mean_bona, mean_spoof, sd):
    bona, spoof = rng.normal(mean_bona, sd, n_bona), rng.normal(mean_spoof, sd, n_spoof)
    return np.concatenate([bona, spoof]), np.concatenate([np.ones(n_bona), np.zeros(n_spoof)])


def gaussian_llr(mean_bona, mean_spoof, sd):
    """(slope, offset) of log N(x; mean_bona, sd) - log N(x; mean_spoof, sd)."""
    return (mean_bona - mean_spoof) / sd**2, (mean_spoof**2 - mean_bona**2) / (2 * sd**2)


def test_calibration_recovers_the_llr_of_gaussian_scores():
    # Unbalanced classes on purpose: the prior weighting must make the result an LLR regardless.
    scores, labels = gaussian_trials(np.random.default_rng(11), 20000, 60000, 3.0, -1.0, 1.5)
    (slope,), offset = fit_logistic(scores[:, None], labels)
    true_slope, true_offset = gaussian_llr(3.0, -1.0, 1.5)
    assert slope == pytest.approx(true_slope, rel=0.05)
    assert offset == pytest.approx(true_offset, rel=0.05)


def test_cllr_of_perfectly_calibrated_scores_is_the_binary_entropy():
    # Two-valued LLRs ±a with a = logit(q): a bona fide trial gets +a with probability q, a spoof -a with
    # probability q, so the scores are exact LLRs and Cllr = -q log2 q - (1-q) log2 (1-q).
    q = 0.8
    a = math.log(q / (1 - q))
    bona = np.r_[np.full(800, a), np.full(200, -a)]
    spoof = np.r_[np.full(800, -a), np.full(200, a)]
    entropy = -(q * math.log2(q) + (1 - q) * math.log2(1 - q))
    assert compute_cllr(bona, spoof) == pytest.approx(entropy, rel=1e-12)
    # Already calibrated: the best monotone recalibration cannot do better.
    assert compute_min_cllr(bona, spoof) == pytest.approx(entropy, rel=1e-12)


def test_min_cllr_ignores_monotone_transforms_and_bounds_cllr():
    scores, labels = gaussian_trials(np.random.default_rng(5), 300, 500, 1.0, -1.0, 1.0)
    bona, spoof = scores[labels == 1], scores[labels == 0]
    min_cllr = compute_min_cllr(bona, spoof)
    assert compute_min_cllr(np.exp(bona), np.exp(spoof)) == pytest.approx(min_cllr, rel=1e-12)
    slope, offset = gaussian_llr(1.0, -1.0, 1.0)
    assert min_cllr < compute_cllr(slope * bona + offset, slope * spoof + offset) < compute_cllr(5 * bona, 5 * spoof)
    # Perfect separation: the PAV maps every trial to a certain LLR.
    assert compute_min_cllr([3.0, 4.0], [1.0, 2.0]) == 0.0


def test_act_dcf_and_min_dcf_by_hand():
    bona, spoof = [2.0, 0.1, -1.0, -3.0], [-2.0, -0.5, 0.0, 1.5, -5.0]
    costs = DcfCosts()  # p_spoof 0.05, C_miss 1, C_fa 10: normalised DCF = 1.9 P_miss + P_fa
    # Bayes threshold -log(0.95 / 0.5) = -0.642: bona fide -1 and -3 rejected, spoofs -0.5, 0 and 1.5 accepted.
    assert costs.bayes_threshold() == pytest.approx(-0.6418538862, rel=1e-9)
    assert compute_act_dcf(bona, spoof, costs) == pytest.approx(1.9 * 2 / 4 + 3 / 5)
    # Sweeping the threshold up through -5 (s), -3 (b), -2 (s), ...: costs 1, 0.8, 1.275, 1.075, 1.55, ...
    assert compute_min_dcf(bona, spoof, costs) == pytest.approx(0.8)


def test_evaluate_scores_reports_the_asvspoof5_metrics():
    trials = cm_trials(["a", "b", "c", "d", "e"], ["-", "-", "A01", "A01", "A02"],
                       ["bonafide", "bonafide", "spoof", "spoof", "spoof"], [2.0, 0.5, 1.0, -1.0, -2.0])
    result = evaluate_scores(trials)
    bona, spoof = [2.0, 0.5], [1.0, -1.0, -2.0]
    assert result["min_dcf"] == compute_min_dcf(bona, spoof)
    assert result["act_dcf"] == compute_act_dcf(bona, spoof)
    assert result["cllr"] == compute_cllr(bona, spoof)
    assert result["min_cllr"] == compute_min_cllr(bona, spoof)


def _score_file(path, scores, labels, prefix="U"):
    ids = [f"{prefix}{i:05d}" for i in range(len(scores))]
    attacks = ["-" if label == 1 else "A07" for label in labels]
    keys = ["bonafide" if label == 1 else "spoof" for label in labels]
    write_cm_scores(path, ids, attacks, keys, scores)
    return path


def test_calibrate_writes_a_calibration_that_score_and_target_far_use(tmp_path, capsys):
    scores, labels = gaussian_trials(np.random.default_rng(3), 400, 1200, 2.0, -2.0, 2.0)
    dev = _score_file(tmp_path / "dev.txt", scores, labels)
    out = tmp_path / "calibration.json"
    assert cli.main(["calibrate", "--cm-scores", str(dev), "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["cllr_calibrated"] < summary["cllr_raw"]
    calibration = read_calibration(out)
    assert calibration == calibrate_scores(read_cm_scores(dev), source=calibration.source)
    spoof = scores[labels == 0]
    for target in (0.01, 0.1, 0.25):
        threshold = calibration.threshold_for_far(target)
        assert np.mean(spoof >= threshold) <= target
        # The lowest such threshold: one step down lets one more spoof through.
        assert np.mean(spoof >= np.nextafter(threshold, -np.inf)) > target
    # An existing file is never replaced silently.
    assert cli.main(["calibrate", "--cm-scores", str(dev), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["score", "--cm-scores", str(dev), "--calibration", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    llrs = calibration.llr(scores)
    assert result["cllr"] == pytest.approx(compute_cllr(llrs[labels == 1], llrs[labels == 0]), rel=1e-12)


def test_fusion_recovers_the_weights_of_independent_systems(tmp_path, capsys):
    rng = np.random.default_rng(8)
    labels = np.r_[np.ones(6000), np.zeros(6000)]
    # Two conditionally independent Gaussian systems: the fused LLR is the sum of their LLRs.
    systems = [(1.0, -1.0, 1.0), (0.5, -0.5, 1.0)]
    files = {}
    for part in ("dev", "eval"):
        columns = [np.where(labels == 1, rng.normal(mb, sd, labels.size), rng.normal(ms, sd, labels.size))
                   for mb, ms, sd in systems]
        files[part] = [_score_file(tmp_path / f"{part}{k}.txt", column, labels) for k, column in enumerate(columns)]
    out = tmp_path / "fused.txt"
    assert cli.main(["fuse", "--dev", *map(str, files["dev"]), "--eval", *map(str, files["eval"]),
                     "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    for weight, (mb, ms, sd) in zip(result["weights"], systems):
        assert weight == pytest.approx(gaussian_llr(mb, ms, sd)[0], rel=0.05)
    assert result["fused_eval_eer_percent"] < min(result["eval_eer_percent"])
    fused = read_cm_scores(out)
    assert list(fused.utt_ids) == list(read_cm_scores(files["eval"][0]).utt_ids)


def test_fusion_refuses_files_of_different_trials_naming_the_ids(tmp_path, capsys):
    labels = np.r_[np.ones(5), np.zeros(5)]
    scores = np.random.default_rng(1).normal(size=10)
    a = _score_file(tmp_path / "a.txt", scores, labels)
    b = tmp_path / "b.txt"
    lines = a.read_text().splitlines()
    b.write_text("\n".join(lines[:-1] + [lines[-1].replace("U00009", "X00042")]) + "\n")
    assert cli.main(["fuse", "--dev", str(a), str(b), "--eval", str(a), str(b), "--out",
                     str(tmp_path / "fused.txt")]) == 2
    err = capsys.readouterr().err
    assert f"{b}: does not score the same trials" in err
    assert "missing from it (U00009)" in err and "not in" in err and "(X00042)" in err
    assert not (tmp_path / "fused.txt").exists()
