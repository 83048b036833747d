"""Per-category audio-visual figures against independent computations, and the planted-pair summary."""
import numpy as np
import pytest

from darts_jax.spoofing.av_protocol import fuses_both_streams, planted_pair_summary
from darts_jax.spoofing.av_report import category_metrics, format_table, roc_points


def _pairwise_auc(real, fake):
    """P(real > fake) + P(tie) / 2 by counting every pair."""
    real, fake = np.asarray(real)[:, None], np.asarray(fake)[None, :]
    return float(np.mean((real > fake) + 0.5 * (real == fake)))


def test_each_category_is_scored_against_the_real_clips():
    rng = np.random.default_rng(0)
    categories = np.array(["RVRA"] * 30 + ["FVRA"] * 20 + ["LS"] * 25)
    scores = np.concatenate([rng.normal(1, 1, 30), rng.normal(-2, 1, 20), rng.normal(1, 1, 25)])
    metrics = category_metrics(scores, categories)
    assert set(metrics) == {"FVRA", "LS", "all"}
    for name, fake in (("FVRA", scores[30:50]), ("LS", scores[50:]), ("all", scores[30:])):
        assert metrics[name]["auc"] == pytest.approx(_pairwise_auc(scores[:30], fake))
        assert metrics[name]["clips"] == fake.size
        correct = np.sum(scores[:30] > 0) + np.sum(fake <= 0)
        assert metrics[name]["accuracy"] == pytest.approx(correct / (30 + fake.size))
        assert metrics[name]["balanced_accuracy"] == pytest.approx(
            (np.mean(scores[:30] > 0) + np.mean(fake <= 0)) / 2)
    assert metrics["FVRA"]["auc"] > 0.9 and metrics["FVRA"]["eer_percent"] < 15


def test_roc_area_equals_the_auc():
    rng = np.random.default_rng(1)
    real, fake = rng.normal(0.5, 1, 40), np.round(rng.normal(0, 1, 50), 1)  # ties in the fakes
    fpr, tpr = roc_points(real, fake)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(_pairwise_auc(real, fake))


def test_no_real_clips_is_an_error_and_the_table_lists_every_category():
    with pytest.raises(ValueError, match="RVRA"):
        category_metrics([0.1, 0.2], ["LS", "FVRA"])
    table = format_table({"m": category_metrics([1.0, -1.0, 0.0], ["RVRA", "LS", "RVFA"])})
    assert table.splitlines()[0] == "| model (auc) | FVRA | RVFA | FVFA | LS | all |"
    assert "| m | - | 1.000 | - | 1.000 | 1.000 |" in table


def test_planted_pair_summary_pairs_models_by_seed():
    def result(model, seed, auc, taps):
        return {"model": model, "seed": seed, "taps_used": taps, "metrics": {"LS": {"auc": auc}}}

    results = [result("audio", 0, 0.5, ["a1", "a2"]), result("video", 0, 0.6, ["v1", "v2"]),
               result("stgs", 0, 0.9, ["v1", "a3", "a4"]),
               result("audio", 1, 0.7, ["a1", "a2"]), result("video", 1, 0.4, ["v1", "v2"]),
               result("stgs", 1, 0.65, ["a1", "a3", "a2"])]
    summary = planted_pair_summary(results)
    assert [r["difference"] for r in summary["rows"]] == pytest.approx([0.3, -0.05])
    assert summary["seeds_fusing_both"] == 1 and summary["seeds_beating_single"] == 1
    assert fuses_both_streams(["v4", "a1"]) and not fuses_both_streams(["a1", "a2"])


def test_class_weights_balance_the_task_real_and_fake_training_clips():
    from darts_jax.spoofing.av_protocol import class_weights

    train = ["RVRA"] * 30 + ["FVRA"] * 10 + ["RVFA"] * 10 + ["FVFA"] * 10 + ["LS"] * 60
    # Counted by hand: 90 fake against 30 real on every category; 60 LS against 30 RVRA on the lip-sync task.
    assert class_weights(train, "all") == (1.0, 3.0)
    assert class_weights(train, "lipsync") == (1.0, 2.0)
    with pytest.raises(ValueError, match="RVRA"):
        class_weights(["LS", "FVRA"], "all")
