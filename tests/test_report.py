"""The run report: markdown content, figure files, and what the figures plot."""
import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.image import imread
from scipy.special import softmax
from scipy.stats import norm

from darts_jax import report
from darts_jax.config import PRIMITIVES
from darts_jax.genotype import KNOWN_GENOTYPES, random_genotype
from darts_jax.metrics import compute_eer, evaluate_scores
from darts_jax.scores import AsvScores, CmScores

EVAL_ATTACKS = [f"A{i:02d}" for i in range(7, 20)]
# Node i's incoming β rows in the search log's layout, written out rather than taken from the code.
NODE_ROWS = [slice(0, 2), slice(2, 5), slice(5, 9), slice(9, 14)]
REFERENCE = {"source": "Ge et al., Interspeech 2021 (ASVspoof 2019 LA eval, 16/64 LFCC)",
             "eer_percent": 4.96, "min_tdcf": 0.0914, "params": 7515682}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_records(epochs, seed=0, n_ops=len(PRIMITIVES)):
    rng = np.random.default_rng(seed)
    return [{"step": 10 * epoch, "epoch": epoch, "genotype": random_genotype(epoch).to_dict(),
             "arch": {"alphas_normal": rng.normal(size=(14, n_ops)).tolist(),
                      "alphas_reduce": rng.normal(size=(14, n_ops)).tolist(),
                      "betas_normal": rng.normal(size=14).tolist(),
                      "betas_reduce": rng.normal(size=14).tolist()}}
            for epoch in epochs]


def fake_cm_scores(seed=0, attacks=EVAL_ATTACKS, per_attack=40, bona=80):
    rng = np.random.default_rng(seed)
    utt_ids = [f"B{i}" for i in range(bona)]
    trial_attacks, keys, scores = ["-"] * bona, ["bonafide"] * bona, list(rng.normal(2.0, 1.0, bona))
    for index, attack in enumerate(attacks):
        utt_ids += [f"{attack}_{i}" for i in range(per_attack)]
        trial_attacks += [attack] * per_attack
        keys += ["spoof"] * per_attack
        scores += list(rng.normal(-1.0 + 0.2 * index, 1.0, per_attack))
    return CmScores(np.array(utt_ids), np.array(trial_attacks), np.array(keys), np.array(scores))


def fake_asv_scores(seed=0, attacks=EVAL_ATTACKS):
    rng = np.random.default_rng(seed)
    sources = ["bonafide"] * 60 + [a for a in attacks for _ in range(10)]
    keys = ["target"] * 30 + ["nontarget"] * 30 + ["spoof"] * (10 * len(attacks))
    scores = np.concatenate([rng.normal(3, 1, 30), rng.normal(-3, 1, 30), rng.normal(1, 2, 10 * len(attacks))])
    return AsvScores(np.array(sources), np.array(keys), scores)


def run_report(out_dir, *, asv=None, records=None, reference=REFERENCE, **overrides):
    cm_scores = fake_cm_scores()
    metrics = evaluate_scores(cm_scores, asv)
    arguments = dict(title="SynthSpoof test run", genotype=KNOWN_GENOTYPES["pcdarts-lfcc"], params=1234567,
                     metrics=metrics, timings={"search": 61.5, "train": 3700.25, "evaluate": 12.0},
                     cm_scores=cm_scores, genotype_records=fake_records(range(3)) if records is None else records,
                     primitives=PRIMITIVES, settings={"corpus": "SynthSpoof", "audio length": "4 s", "epochs": 3},
                     reference=reference)
    arguments.update(overrides)
    return report.write_report(out_dir, **arguments), arguments


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= 300
    # A blank canvas would be one colour; a drawn figure has many (antialiasing alone makes dozens).
    rgba = np.round(image * 255).astype(np.uint8)
    colours = rgba[..., 0].astype(np.uint32) << 16 | rgba[..., 1].astype(np.uint32) << 8 | rgba[..., 2]
    assert np.unique(colours).size > 20


def test_write_report_writes_every_figure_and_section(tmp_path):
    out_dir = tmp_path / "run" / "report"
    path, args = run_report(out_dir)
    assert path == out_dir / "report.md"
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(["report.md", *report.FIGURES.values()])
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    for name in report.FIGURES.values():
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
    assert not (tmp_path / report.FIGURES["arch_trajectories"]).exists()
    assert report.FIGURES["arch_trajectories"] not in path.read_text()
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


def test_trajectories_plot_softmax_weights_and_the_latest_record_per_epoch(tmp_path):
    records = fake_records([0, 1, 2], seed=1) + fake_records([1], seed=2)
    fig = report.plot_arch_trajectories(records, PRIMITIVES, tmp_path / "arch.png")
    assert_png(tmp_path / "arch.png")
    by_epoch = {0: records[0], 1: records[3], 2: records[2]}
    for row, cell in enumerate(("normal", "reduce")):
        alphas = np.array([by_epoch[e]["arch"][f"alphas_{cell}"] for e in range(3)])
        betas = np.array([by_epoch[e]["arch"][f"betas_{cell}"] for e in range(3)])
        op_axis = fig.axes[row * 5]
        expected_ops = softmax(alphas, axis=2).mean(axis=1)
        assert [line.get_label() for line in op_axis.lines] == list(PRIMITIVES)
        for line, expected in zip(op_axis.lines, expected_ops.T):
            np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
            np.testing.assert_allclose(line.get_ydata(), expected)
        for node, rows in enumerate(NODE_ROWS):
            node_axis = fig.axes[row * 5 + 1 + node]
            expected_edges = softmax(betas[:, rows], axis=1)
            assert len(node_axis.lines) == node + 2
            for line, expected in zip(node_axis.lines, expected_edges.T):
                np.testing.assert_allclose(line.get_ydata(), expected)


def test_trajectories_reject_records_of_other_primitives(tmp_path):
    with pytest.raises(ValueError, match="genotype_records\\[0\\]: alphas_normal has shape \\(14, 5\\)"):
        report.plot_arch_trajectories(fake_records([0], n_ops=5), PRIMITIVES, tmp_path / "arch.png")
    broken = fake_records([0, 1])
    del broken[1]["arch"]["betas_reduce"]
    with pytest.raises(ValueError, match="genotype_records\\[1\\]: .*betas_reduce"):
        report.plot_arch_trajectories(broken, PRIMITIVES, tmp_path / "arch.png")


def test_read_genotype_records_names_a_broken_line(tmp_path):
    records = fake_records(range(2))
    path = tmp_path / "genotypes.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + "\n")
    assert report.read_genotype_records(path) == records
    path.write_text(json.dumps(records[0]) + "\n" + json.dumps(records[1])[:50] + "\n")
    with pytest.raises(ValueError, match="genotypes.jsonl, line 2"):
        report.read_genotype_records(path)
    with pytest.raises(FileNotFoundError, match="written by a search run"):
        report.read_genotype_records(tmp_path / "missing.jsonl")


def _label_boxes(fig):
    renderer = FigureCanvasAgg(fig).get_renderer()
    axis = fig.axes[0]
    labels = [text for text in axis.texts if text.get_bbox_patch() is not None]
    circles = [patch.get_window_extent(renderer) for patch in axis.patches if type(patch).__name__ == "Circle"]
    return [text.get_text() for text in labels], [text.get_window_extent(renderer) for text in labels], circles


@pytest.mark.parametrize("genotype,kind", [(KNOWN_GENOTYPES["pcdarts-lfcc"], "normal"), (random_genotype(7), "reduce")])
def test_cell_labels_every_edge_without_overlaps(tmp_path, genotype, kind):
    fig = report.plot_cell(genotype, kind, tmp_path / "cell.png")
    assert_png(tmp_path / "cell.png")
    names, boxes, circles = _label_boxes(fig)
    assert sorted(names) == sorted(op for op, _ in getattr(genotype, kind))
    node_names = {text.get_text() for text in fig.axes[0].texts} - set(names)
    assert node_names == {"$c_{k-2}$", "$c_{k-1}$", "0", "1", "2", "3", "$c_{k}$"}
    arrows = [patch for patch in fig.axes[0].patches if type(patch).__name__ == "FancyArrowPatch"]
    assert len(arrows) == len(getattr(genotype, kind)) + len(getattr(genotype, f"{kind}_concat"))
    for index, box in enumerate(boxes):
        assert not any(box.overlaps(other) for other in boxes[index + 1:] + circles), names[index]


def test_cell_rejects_unknown_kind(tmp_path):
    with pytest.raises(ValueError, match="'normal' or 'reduce'"):
        report.plot_cell(random_genotype(0), "reduction", tmp_path / "cell.png")


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
