"""The protocol's judgement (preconditions, the claim) on hand-made rows, and the report it writes."""
import numpy as np
import pytest

from darts_jax.spoofing.adaptation.protocol import check_preconditions, judge_claim
from darts_jax.spoofing.adaptation.report import summary_table, write_report


def _rows(ft_forgetting, fretal_forgetting, ft_target, fretal_target, kd_mean=None):
    rows = []
    for seed, (f_ft, f_fr, t_ft, t_fr) in enumerate(zip(ft_forgetting, fretal_forgetting, ft_target, fretal_target)):
        base = {"setting": "toy", "seed": seed, "source_eer": 1.0, "target_eer": 2.0, "wall_s": 1.0}
        rows.append({**base, "method": "zero-shot", "source_acc": 99.0, "target_acc": 55.0, "mean_acc": 77.0,
                     "forgetting": 0.0})
        for method, f, t in (("ft", f_ft, t_ft), ("fretal", f_fr, t_fr)):
            rows.append({**base, "method": method, "source_acc": 99.0 - f, "target_acc": t,
                         "mean_acc": (99.0 - f + t) / 2, "forgetting": f})
        if kd_mean is not None:
            rows.append({**base, "method": "kd", "source_acc": 90.0, "target_acc": 80.0, "mean_acc": kd_mean,
                         "forgetting": 9.0})
    return rows


def test_the_claim_holds_only_with_enough_gain_wins_and_target_accuracy():
    good = _rows([30, 25, 28, 31, 20], [10, 12, 9, 30, 22], [95] * 5, [93, 94, 92, 95, 93], kd_mean=80.0)
    verdict = judge_claim(good)
    gains = np.array([20, 13, 19, 1, -2])
    assert verdict["forgetting_gain_per_seed"] == gains.tolist()
    assert verdict["forgetting_gain_mean"] == pytest.approx(gains.mean())
    assert verdict["paired_wins"] == 4 and verdict["holds"]
    fretal_mean = np.array([(99 - f + t) / 2 for f, t in zip([10, 12, 9, 30, 22], [93, 94, 92, 95, 93])])
    assert verdict["mean_acc_minus_kd_mean"] == pytest.approx((fretal_mean - 80.0).mean())
    # Three wins of five is not enough, whatever the mean.
    assert not judge_claim(_rows([30, 25, 28, 31, 20], [10, 12, 9, 32, 22], [95] * 5, [95] * 5))["holds"]
    # Less forgetting bought with more than 3 points of target accuracy fails too.
    assert not judge_claim(_rows([30] * 5, [5] * 5, [95] * 5, [91] * 5))["holds"]


def test_preconditions_need_a_hard_target_and_a_forgetful_fine_tuning():
    rows = _rows([12] * 3, [1] * 3, [95] * 3, [95] * 3)
    assert check_preconditions(rows)["hold"]
    weak = _rows([8] * 3, [1] * 3, [95] * 3, [95] * 3)
    assert not check_preconditions(weak)["ft_forgetting_ok"]
    easy = [dict(r, target_acc=75.0) if r["method"] == "zero-shot" else r for r in rows]
    assert not check_preconditions(easy)["zero_shot_ok"]


def test_report_writes_table_rows_and_plot(tmp_path):
    rows = _rows([30, 20, 25], [10, 15, 5], [95] * 3, [94] * 3)
    table = summary_table(rows)
    ft_line = next(line for line in table.splitlines() if line.startswith("| ft |"))
    assert f"{np.mean([30, 20, 25]):.1f} ± {np.std([30, 20, 25], ddof=1):.1f}" in ft_line
    report = write_report(rows, check_preconditions(rows), judge_claim(rows), {"seeds": [0, 1, 2]}, tmp_path)
    text = report.read_text()
    assert "The claim HOLDS" in text and "FT forgetting 25.0 points" in text
    assert (tmp_path / "adaptation.png").stat().st_size > 0
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == len(rows)


def test_report_says_why_a_claim_was_not_judged(tmp_path):
    rows = _rows([12] * 3, [1] * 3, [95] * 3, [95] * 3)
    held = check_preconditions(rows)
    assert held["hold"]
    text = write_report(rows, held, None, {"seeds": [0, 1, 2]}, tmp_path / "no-fretal").read_text()
    assert "did not include both FT and FReTAL" in text and "HOLDS" not in text
    weak = check_preconditions(_rows([8] * 3, [1] * 3, [95] * 3, [95] * 3))
    text = write_report(rows, weak, None, {"seeds": [0, 1, 2]}, tmp_path / "weak").read_text()
    assert "the preconditions do not hold" in text
