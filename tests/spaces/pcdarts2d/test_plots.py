"""Figures of the PC-DARTS space: cell graphs, α/β trajectories, and the search log they read."""
import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from scipy.special import softmax

from darts_jax.spaces.pcdarts2d import plots
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import random_genotype
from darts_jax.spaces.pcdarts2d.genotype_text import KNOWN_GENOTYPES
from tests.figures import assert_png, fake_records

# Node i's incoming β rows in the search log's layout, written out rather than taken from the code.
NODE_ROWS = [slice(0, 2), slice(2, 5), slice(5, 9), slice(9, 14)]


def test_trajectories_plot_softmax_weights_and_the_latest_record_per_epoch(tmp_path):
    records = fake_records([0, 1, 2], seed=1) + fake_records([1], seed=2)
    fig = plots.plot_arch_trajectories(records, PRIMITIVES, tmp_path / "arch.png")
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
        plots.plot_arch_trajectories(fake_records([0], n_ops=5), PRIMITIVES, tmp_path / "arch.png")
    broken = fake_records([0, 1])
    del broken[1]["arch"]["betas_reduce"]
    with pytest.raises(ValueError, match="genotype_records\\[1\\]: .*betas_reduce"):
        plots.plot_arch_trajectories(broken, PRIMITIVES, tmp_path / "arch.png")


def test_read_genotype_records_names_a_broken_line(tmp_path):
    records = fake_records(range(2))
    path = tmp_path / "genotypes.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + "\n")
    assert plots.read_genotype_records(path) == records
    path.write_text(json.dumps(records[0]) + "\n" + json.dumps(records[1])[:50] + "\n")
    with pytest.raises(ValueError, match="genotypes.jsonl, line 2"):
        plots.read_genotype_records(path)
    with pytest.raises(FileNotFoundError, match="written by a search run"):
        plots.read_genotype_records(tmp_path / "missing.jsonl")


def _label_boxes(fig):
    renderer = FigureCanvasAgg(fig).get_renderer()
    axis = fig.axes[0]
    labels = [text for text in axis.texts if text.get_bbox_patch() is not None]
    circles = [patch.get_window_extent(renderer) for patch in axis.patches if type(patch).__name__ == "Circle"]
    return [text.get_text() for text in labels], [text.get_window_extent(renderer) for text in labels], circles


@pytest.mark.parametrize("genotype,kind", [(KNOWN_GENOTYPES["pcdarts-lfcc"], "normal"), (random_genotype(7), "reduce")])
def test_cell_labels_every_edge_without_overlaps(tmp_path, genotype, kind):
    fig = plots.plot_cell(genotype, kind, tmp_path / "cell.png")
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
        plots.plot_cell(random_genotype(0), "reduction", tmp_path / "cell.png")


def test_collapse_section_tabulates_the_epochs_and_says_when_the_search_collapsed():
    records = [{"epoch": 0, "step": 3, "normal_skip": 1, "normal_pool": 2, "normal_parameter_free": 3,
                "normal_alpha_entropy": 2.07, "hessian_eigenvalue": 0.01},
               {"epoch": 1, "step": 6, "normal_skip": 4, "normal_pool": 3, "normal_parameter_free": 7,
                "normal_alpha_entropy": 1.5}]
    lines = plots.collapse_section(records)
    assert "| 0 | 1 | 2 | 3 | 2.07 | 0.01 |" in lines and "| 1 | 4 | 3 | 7 | 1.5 | - |" in lines
    assert any("**The search collapsed**" in line and "7 parameter-free ops" in line for line in lines)
    records[-1]["normal_parameter_free"] = 4
    assert not any("collapsed" in line for line in plots.collapse_section(records))
    assert plots.collapse_section([{"epoch": 0, "loss": 0.5}]) == []
