"""The sweep's summary: spread, bootstrap interval and op frequencies, on score files made here."""
import numpy as np
import pytest

from darts_jax.spoofing.metrics import compute_eer
from darts_jax.spoofing.scores import cm_trials, read_cm_scores, write_scores
from darts_jax.spoofing.sweep import bootstrap_mean_eer_ci, op_counts, summarise, sweep_table

TRIALS = 400


def _score_file(path, separation, seed):
    rng = np.random.default_rng(seed)
    labels = np.arange(TRIALS) % 4 == 0  # 100 bona fide, 300 spoofs
    scores = rng.standard_normal(TRIALS) + separation * labels
    ids = [f"LA_E_{i:07d}" for i in range(TRIALS)]
    attacks = np.where(labels, "-", "A07")
    write_scores(path, cm_trials(ids, attacks, np.where(labels, "bonafide", "spoof"), scores))
    return path


def _row(tmp_path, seed, separation, genotype):
    path = _score_file(tmp_path / f"scores{seed}.txt", separation, seed)
    trials = read_cm_scores(path)
    eer = compute_eer(trials.scores[trials.labels == 1], trials.scores[trials.labels == 0])[0]
    return {"seed": seed, "eer_percent": 100 * eer, "min_tdcf": None, "genotype": genotype,
            "genotype_text": str(genotype), "scores": str(path)}


GENOTYPE_A = {"normal": [["sep_conv_3x3", 0], ["skip_connect", 1]], "normal_concat": [2]}
GENOTYPE_B = {"normal": [["max_pool_3x3", 0], ["skip_connect", 1]], "normal_concat": [2]}


def test_summary_spread_and_frequencies(tmp_path):
    rows = [_row(tmp_path, 0, 1.0, GENOTYPE_A), _row(tmp_path, 1, 2.0, GENOTYPE_A), _row(tmp_path, 2, 3.0, GENOTYPE_B)]
    summary = summarise(rows, np.random.default_rng(0))
    eers = np.array([row["eer_percent"] for row in rows])
    assert summary["eer_percent_mean"] == pytest.approx(eers.mean())
    assert summary["eer_percent_std"] == pytest.approx(np.sqrt(np.sum((eers - eers.mean()) ** 2) / 2))
    low, high = summary["eer_percent_ci95"]
    assert low < eers.mean() < high
    assert summary["genotype_counts"] == {str(GENOTYPE_A): 2, str(GENOTYPE_B): 1}
    assert summary["op_counts"] == {"normal": {"node 2 <- 0": {"sep_conv_3x3": 2, "max_pool_3x3": 1},
                                               "node 2 <- 1": {"skip_connect": 3}}}
    table = sweep_table(summary)
    assert f"| 2 | {rows[2]['eer_percent']:.2f} | n/a |" in table and "max_pool_3x3 1" in table


def test_the_interval_narrows_when_seeds_agree(tmp_path):
    # Same model thrice: only trial resampling is left, so the interval is narrower than with spread seeds.
    same = [read_cm_scores(_score_file(tmp_path / f"same{i}.txt", 1.5, 7)) for i in range(3)]
    spread = [read_cm_scores(_score_file(tmp_path / f"spread{i}.txt", sep, 7)) for i, sep in enumerate((0.5, 1.5, 3))]
    width = [np.subtract(*bootstrap_mean_eer_ci(t, np.random.default_rng(1), resamples=400)[::-1])
             for t in (same, spread)]
    assert 0 < width[0] < width[1]


def test_seeds_scored_on_different_trials_are_refused(tmp_path):
    first = read_cm_scores(_score_file(tmp_path / "a.txt", 1.0, 0))
    other = first.__class__(first.utt_ids[::-1], first.attacks, first.labels, first.scores)
    with pytest.raises(ValueError, match="different trials"):
        bootstrap_mean_eer_ci([first, other], np.random.default_rng(0), resamples=10)


def test_op_counts_name_edges_by_node_and_input():
    genotype = {"normal": [["a", 0], ["b", 1], ["c", 2], ["d", 0]], "normal_concat": [2, 3]}
    assert op_counts([genotype]) == {"normal": {"node 2 <- 0": {"a": 1}, "node 2 <- 1": {"b": 1},
                                                "node 3 <- 2": {"c": 1}, "node 3 <- 0": {"d": 1}}}
