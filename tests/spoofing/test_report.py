"""The run report: markdown content, figure files, and what the figures plot."""
import numpy as np
import pytest
from scipy.stats import norm

from darts_jax.spaces.pcdarts2d import plots
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype_text import KNOWN_GENOTYPES
from darts_jax.spoofing import report
from darts_jax.spoofing.metrics import compute_eer, evaluate_scores
from darts_jax.spoofing.scores import AsvScores, cm_trials
from tests.figures import assert_png, fake_records

EVAL_ATTACKS = [f"A{i:02d}" for i in range(7, 20)]
REFERENCE = {"source": "Ge et al., Interspeech 2021 (ASVspoof 2019 LA eval, 16/64 LFCC)",
             "eer_percent": 4.96, "min_tdcf": 0.0914, "params": 7515682}
ALL_FIGURES = {**report.FIGURES, **plots.FIGURES}


def fake_cm_scores(seed=0, attacks=EVAL_ATTACKS, per_attack=40, bona=80):
    rng = np.random.default_rng(seed)
    utt_ids = [f"B{i}" for i in range(bona)]
    trial_attacks, keys, scores = ["-"] * bona, ["bonafide"] * bona, list(rng.normal(2.0, 1.0, bona))
    for index, attack in enumerate(attacks):
        utt_ids += [f"{attack}_{i}" for i in range(per_attack)]
        trial_attacks += [attack] * per_attack
        keys += ["spoof"] * per_attack
        scores += list(rng.normal(-1.0 + 0.2 * index, 1.0, per_attack))
    return cm_trials(np.array(utt_ids), np.array(trial_attacks), np.array(keys), np.array(scores))


def fake_asv_scores(seed=0, attacks=EVAL_ATTACKS):
    rng = np.random.default_rng(seed)
    sources = ["bonafide"] * 60 + [a for a in attacks for _ in range(10)]
    keys = ["target"] * 30 + ["nontarget"] * 30 + ["spoof"] * (10 * len(attacks))
    scores = np.concatenate([rng.normal(3, 1, 30), rng.normal(-3, 1, 30), rng.normal(1, 2, 10 * len(attacks))])
    return AsvScores(np.array(sources), np.array(keys), scores)


def run_report(out_dir, *, asv=None, records=None, reference=REFERENCE, **overrides):
    """The demo's report: the spoofing sections with the PC-DARTS architecture section."""
    cm_scores = fake_cm_scores()
    metrics = evaluate_scores(cm_scores, asv)
    genotype, params = KNOWN_GENOTYPES["pcdarts-lfcc"], 1234567
    records = fake_records(range(3)) if records is None else records
    arguments = dict(title="SynthSpoof test run", params=params, metrics=metrics,
                     timings={"search": 61.5, "train": 3700.25, "evaluate": 12.0}, cm_scores=cm_scores,
                     settings={"corpus": "SynthSpoof", "audio length": "4 s", "epochs": 3}, reference=reference)
    arguments.update(overrides)
    architecture = plots.architecture_section(genotype, params, records, PRIMITIVES)
    return report.write_report(out_dir, architecture=architecture, **arguments), {**arguments, "genotype": genotype}


def test_write_report_writes_every_figure_and_section(tmp_path):
    out_dir = tmp_path / "run" / "report"
    path, args = run_report(out_dir)
    assert path == out_dir / "report.md"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(["report.md", *ALL_FIGURES.values()])
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    for name in ALL_FIGURES.values():
        assert_png(out_dir / name)
        assert f"]({name})" in path.read_text()
    text = path.read_text()
    metrics = args["metrics"]
    assert text.startswith("# SynthSpoof test run\n")
    assert "| audio length | 4 s |" in text and "| epochs | 3 |" in text
    assert args["genotype"].to_string() in text
    assert "1,234,567" in text
    assert f"| pooled EER | {metrics['eer_percent']:.2f} % |" in text
    assert "| pooled min t-DCF | not available (no ASV scores) |" in text
    for attack, row in metrics["per_attack"].items():
        status = "known (= A04)" if attack == "A16" else "known (= A06)" if attack == "A19" else "unseen"
        assert f"| {attack} | {status} | {row['spoof_trials']} | {row['eer_percent']:.2f} | n/a |" in text
    assert text.count("| unseen |") == 11
    total = sum(args["timings"].values())
    assert f"| **total** | **{total:.1f}** | **1 h 02 min 54 s** |" in text
    assert f"| published: {REFERENCE['source']} | 4.96 | 0.0914 | 7,515,682 |" in text
    this_run = f"| this run (see Results above) | {metrics['eer_percent']:.2f} | not available (no ASV scores) |"
    assert f"{this_run} 1,234,567 |" in text
    assert "not comparable to ASVspoof 2019 LA" in text


def test_write_report_with_asv_scores_shows_min_tdcf(tmp_path):
    path, args = run_report(tmp_path, asv=fake_asv_scores(), records=[], reference=None)
    text = path.read_text()
    metrics = args["metrics"]
    assert metrics["min_tdcf"] is not None
    assert f"| pooled min t-DCF | {metrics['min_tdcf']:.4f} |" in text
    for attack, row in metrics["per_attack"].items():
        assert f"| {row['eer_percent']:.2f} | {row['min_tdcf']:.4f} |" in text
    assert "not available" not in text
    assert "Published reference" not in text and "not comparable" not in text


def test_write_report_without_search_skips_the_trajectories(tmp_path):
    path, _ = run_report(tmp_path, records=[])
    assert not (tmp_path / plots.FIGURES["arch_trajectories"]).exists()
    assert plots.FIGURES["arch_trajectories"] not in path.read_text()
    assert "No search run" in path.read_text()


@pytest.mark.parametrize("bad,message", [({"timings": {"train": -1.0}}, "timings\\['train'\\]"),
                                         ({"timings": {"train": float("nan")}}, "timings\\['train'\\]"),
                                         ({"timings": {"train": "10"}}, "timings\\['train'\\]"),
                                         ({"reference": {"eer_percent": 4.96}}, "reference: give a 'source'"),
                                         ({"metrics": {"eer_percent": 1.0}}, "metrics: missing"),
                                         ({"records": fake_records([0], n_ops=5)}, "genotype_records\\[0\\]")])
def test_write_report_refuses_bad_input_before_writing(tmp_path, bad, message):
    with pytest.raises(ValueError, match=message):
        run_report(tmp_path / "out", **bad)
    assert not (tmp_path / "out").exists()


def test_det_marks_the_eer_of_compute_eer(tmp_path):
    rng = np.random.default_rng(3)
    # Integer scores make ties, where an interpolated crossing would differ from compute_eer.
    bona, spoof = rng.integers(0, 8, 300).astype(float), rng.integers(-4, 4, 500).astype(float)
    fig = report.plot_det(bona, spoof, tmp_path / "det.png", label="test")
    assert_png(tmp_path / "det.png")
    eer_markers = [line for line in fig.axes[0].lines if line.get_gid() == "eer"]
    assert len(eer_markers) == 1
    eer, _ = compute_eer(bona, spoof)
    assert eer_markers[0].get_xdata()[0] == pytest.approx(norm.ppf(eer))
    assert eer_markers[0].get_ydata()[0] == pytest.approx(norm.ppf(eer))
    assert f"{100 * eer:.2f} %" in eer_markers[0].get_label()
    tick_labels = [label.get_text() for label in fig.axes[0].get_xticklabels()]
    assert tick_labels == ["0.1", "0.5", "1", "2", "5", "10", "20", "40"]
    np.testing.assert_allclose(fig.axes[0].get_xticks(), norm.ppf(np.array([0.1, 0.5, 1, 2, 5, 10, 20, 40]) / 100))


def test_plots_refuse_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        report.plot_score_histograms(fake_cm_scores(), tmp_path / "missing" / "scores.png")


def test_score_histograms_show_every_attack(tmp_path):
    fig = report.plot_score_histograms(fake_cm_scores(attacks=["A01", "A16", "A08"]), tmp_path / "scores.png")
    assert_png(tmp_path / "scores.png")
    box_labels = [label.get_text() for label in fig.axes[1].get_yticklabels()]
    assert box_labels == ["bona fide", "A01: training attack", "A08: unseen", "A16: known (= A04)"]


@pytest.mark.parametrize("attack,status", [("A03", "training attack"), ("A16", "known (= A04)"),
                                           ("A19", "known (= A06)"), ("A07", "unseen"), ("A18", "unseen"),
                                           ("A20", "unknown ID"), ("X1", "unknown ID")])
def test_attack_status(attack, status):
    assert report.attack_status(attack) == status
