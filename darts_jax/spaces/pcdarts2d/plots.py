"""Figures of the 2-D PC-DARTS space: its cells as graphs, and α/β per epoch of a search.

`architecture_section` draws both for a report and returns its markdown (darts_jax.spoofing.report).
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.ticker import MaxNLocator

from darts_jax.plotting import save_figure
from darts_jax.relaxations import edge_weights, softmax_np
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import (
    INPUTS_PER_NODE,
    NODE_BOUNDS,
    NODES,
    NUM_MIXED_EDGES,
    Genotype,
    node_edge_rows,
)

FIGURES = {"normal_cell": "normal_cell.png", "reduce_cell": "reduce_cell.png",
           "arch_trajectories": "arch_trajectories.png"}
_NODE_RADIUS = 0.55  # data units of the cell drawing
_STATE_NAMES = ("$c_{k-2}$", "$c_{k-1}$")
_SOURCE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")


def _op_colour(op: str) -> str:
    """One fixed colour per primitive, shared by the cell drawings and the α plot."""
    return f"C{PRIMITIVES.index(op)}" if op in PRIMITIVES else "0.4"


# ------------------------------------------------------------------------------------------ cells

def _cell_layout(n_states: int) -> np.ndarray:
    """States (inputs, intermediate nodes, output) evenly around an ellipse, clockwise from lower left.

    All states are corners of a convex polygon, so no straight edge passes through a third state.
    The gap at the bottom falls between c_{k-2} and c_k, which no edge joins.
    """
    step = 2 * np.pi / n_states
    angles = 1.5 * np.pi - step / 2 - step * np.arange(n_states)
    return np.stack([6.0 * np.cos(angles), 4.6 * np.sin(angles)], axis=1)


def _place_label(ax, text: str, curve: np.ndarray, taken: list, renderer, style: dict) -> None:
    """Puts `text` on the quadratic Bézier `curve` (3 x 2 control points) at the first of a few positions
    whose box overlaps nothing in `taken` (display-space boxes, extended with the new one); at the
    middle if none is free."""
    label = ax.text(*curve[0], text, **style)
    # The middle comes again last: it is where the label stays when every position is taken.
    for t in (0.5, 0.4, 0.6, 0.32, 0.68, 0.25, 0.75, 0.5):
        label.set_position(((1 - t) ** 2, 2 * t * (1 - t), t ** 2) @ curve)
        box = label.get_window_extent(renderer).expanded(1.15, 1.35)
        if not any(box.overlaps(other) for other in taken):
            break
    taken.append(box)


def plot_cell(genotype: Genotype, kind: str, path) -> Figure:
    """The `kind` ('normal' or 'reduce') cell of `genotype` as a labelled graph, saved as PNG at `path`."""
    if kind not in ("normal", "reduce"):
        raise ValueError(f"kind: {kind!r} is not 'normal' or 'reduce'")
    edges, concat = getattr(genotype, kind), getattr(genotype, f"{kind}_concat")
    names = [*_STATE_NAMES, *(str(node) for node in range(NODES)), "$c_{k}$"]
    output = len(names) - 1
    xy = _cell_layout(len(names))
    fig = Figure(figsize=(9, 7.2))
    # Fixed axes (no layout engine), so label boxes measured while placing them stay where they are.
    ax = fig.add_axes((0.0, 0.0, 1.0, 0.93))
    ax.set_xlim(-6.9, 6.9)
    ax.set_ylim(-5.3, 5.3)
    ax.set_aspect("equal")
    ax.apply_aspect()
    ax.axis("off")
    fig.suptitle(f"{'Normal' if kind == 'normal' else 'Reduction'} cell", fontsize=15)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fills = ["#cfe2f3"] * 2 + ["#fff2cc"] * NODES + ["#d9ead3"]
    circles = []
    for name, centre, fill in zip(names, xy, fills):
        circles.append(ax.add_patch(Circle(centre, _NODE_RADIUS, facecolor=fill, edgecolor="0.2", linewidth=1.2,
                                           zorder=4)))
        ax.text(*centre, name, fontsize=15, ha="center", va="center", zorder=5)
    taken = [circle.get_window_extent(renderer) for circle in circles]

    # Arrows stop at the node circles by shrinking (in points) rather than by clipping against the
    # circle patches, which is several times slower.
    gap_points = (_NODE_RADIUS * ax.transData.get_matrix()[0, 0] + 1.5) * 72 / fig.dpi

    def arrow(source: int, target: int, bend: float = 0.0, **style):
        ax.add_patch(FancyArrowPatch(xy[source], xy[target], arrowstyle="-|>", mutation_scale=18,
                                     shrinkA=gap_points, shrinkB=gap_points,
                                     connectionstyle=f"arc3,rad={bend}", **style))

    for state in concat:
        arrow(state, output, color="0.6", linewidth=1.2, linestyle=(0, (4, 3)), zorder=1)
    pairs = [(source, 2 + index // INPUTS_PER_NODE) for index, (_, source) in enumerate(edges)]
    label_style = {"fontsize": 11, "ha": "center", "va": "center", "zorder": 3}
    for index, ((op, _), (source, target)) in enumerate(zip(edges, pairs)):
        # A node may read the same input twice (a hand-written genotype); bow the two edges apart.
        repeated = pairs.count((source, target)) > 1
        bend = (0.2 if (source, target) not in pairs[:index] else -0.2) if repeated else 0.0
        colour = _op_colour(op)
        arrow(source, target, bend, color=colour, linewidth=2.2, zorder=2)
        # matplotlib's arc3 control point: `bend` times the chord length off the chord's midpoint.
        (dx, dy), middle = xy[target] - xy[source], (xy[source] + xy[target]) / 2
        curve = np.stack([xy[source], middle + bend * np.array([dy, -dx]), xy[target]])
        _place_label(ax, op, curve, taken, renderer,
                     {**label_style, "bbox": {"boxstyle": "round,pad=0.25", "facecolor": "white",
                                              "edgecolor": colour, "linewidth": 1.5}})
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- arch trajectories

def read_genotype_records(path) -> list[dict]:
    """The records of a search run's `genotypes.jsonl`, one per line, in file order."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"genotype log {path} does not exist; it is written by a search run")
    records = []
    with open(path, encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}, line {line_number}: not valid JSON ({err.msg}); "
                                 f"the file may have been cut off, delete the broken line") from None
    return records


def _arch_weights(genotype_records: Sequence[Mapping], primitives: Sequence[str]):
    """Epochs and, per cell, softmax(α) averaged over the edges (epochs x ops) and softmax(β) (epochs x 14).

    A resumed or restarted search logs an epoch again; the later record wins.
    """
    by_epoch = {}
    for index, record in enumerate(genotype_records):
        where = f"genotype_records[{index}]"
        try:
            epoch, arch = int(record["epoch"]), record["arch"]
            arrays = {cell: (np.asarray(arch[f"alphas_{cell}"], dtype=np.float64),
                             np.asarray(arch[f"betas_{cell}"], dtype=np.float64)) for cell in ("normal", "reduce")}
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{where}: missing or malformed field ({err}); a record needs 'epoch' and 'arch' "
                             f"with alphas_/betas_ normal and reduce, as the search writes it") from None
        for cell, (alphas, betas) in arrays.items():
            if alphas.shape != (NUM_MIXED_EDGES, len(primitives)) or betas.shape != (NUM_MIXED_EDGES,):
                raise ValueError(f"{where}: alphas_{cell} has shape {alphas.shape} and betas_{cell} {betas.shape}; "
                                 f"expected ({NUM_MIXED_EDGES}, {len(primitives)}) and ({NUM_MIXED_EDGES},) for the "
                                 f"{len(primitives)} primitives given: pass the search run's primitives")
        by_epoch[epoch] = arrays
    if not by_epoch:
        raise ValueError("genotype_records is empty: there is no search run to plot")
    epochs = sorted(by_epoch)
    weights = {}
    for cell in ("normal", "reduce"):
        alphas = np.stack([by_epoch[epoch][cell][0] for epoch in epochs])
        betas = np.stack([by_epoch[epoch][cell][1] for epoch in epochs])
        weights[cell] = (softmax_np(alphas).mean(axis=1), edge_weights(betas, NODE_BOUNDS))
    return np.array(epochs), weights


def plot_arch_trajectories(genotype_records: Sequence[Mapping], primitives: Sequence[str], path) -> Figure:
    """Per cell: mean softmax(α) of each primitive, and each node's softmax(β) edge weights, vs epoch."""
    return _draw_arch_trajectories(*_arch_weights(genotype_records, primitives), primitives, path)


def _draw_arch_trajectories(epochs: np.ndarray, weights: dict, primitives: Sequence[str], path) -> Figure:
    line = {"marker": "o", "markersize": 3} if epochs.size <= 25 else {}
    # Fixed margins: a layout engine over ten axes costs more than the rest of the figure.
    fig = Figure(figsize=(16, 7.5))
    grid = fig.add_gridspec(2, 1 + NODES, width_ratios=[2.2] + [1] * NODES, left=0.04, right=0.99, bottom=0.08,
                            top=0.95, wspace=0.22, hspace=0.28)
    for row, cell in enumerate(("normal", "reduce")):
        op_weights, edge_weights = weights[cell]
        ax = fig.add_subplot(grid[row, 0])
        for op, series in zip(primitives, op_weights.T):
            ax.plot(epochs, series, color=_op_colour(op), label=op, linewidth=1.8, **line)
        ax.set_title(f"{cell} cell: softmax(α) averaged over the {NUM_MIXED_EDGES} edges", fontsize=11)
        ax.set_ylabel("op weight")
        ax.legend(fontsize=8, ncol=2, loc="best")
        node_axes = []
        for node in range(NODES):
            ax_node = fig.add_subplot(grid[row, 1 + node], sharey=node_axes[0] if node_axes else None)
            node_axes.append(ax_node)
            for source, series in enumerate(edge_weights[:, node_edge_rows(node)].T):
                name = _STATE_NAMES[source] if source < 2 else f"node {source - 2}"
                ax_node.plot(epochs, series, color=_SOURCE_COLOURS[source], label=name, linewidth=1.8, **line)
            ax_node.set_title(f"{cell}, node {node}: softmax(β)", fontsize=10)
            ax_node.legend(fontsize=8, loc="best")
        node_axes[0].set_ylim(0.0, 1.0)
        node_axes[0].set_ylabel("edge weight")
        for ax_any in [ax, *node_axes]:
            ax_any.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax_any.grid(alpha=0.3)
            if row == 1:
                ax_any.set_xlabel("epoch")
    return save_figure(fig, path)


def architecture_section(genotype: Genotype, params: int, genotype_records: Sequence[Mapping] | None,
                         primitives: Sequence[str]) -> Callable[[Path], list[str]]:
    """The report's architecture section: checks the records now, draws into the report folder later.

    `genotype_records` are the search's `genotypes.jsonl` records (None or empty when the genotype was
    given rather than searched).
    """
    searched = bool(genotype_records)
    trajectories = _arch_weights(genotype_records, primitives) if searched else None

    def draw(out_dir: Path) -> list[str]:
        for kind in ("normal", "reduce"):
            plot_cell(genotype, kind, out_dir / FIGURES[f"{kind}_cell"])
        if searched:
            _draw_arch_trajectories(*trajectories, primitives, out_dir / FIGURES["arch_trajectories"])
        lines = ["## Architecture", "", "Genotype (PyTorch form):", "", "```text", genotype.to_string(), "```", "",
                 f"Trainable parameters: **{params:,}**", "",
                 f"![normal cell]({FIGURES['normal_cell']})", "", f"![reduction cell]({FIGURES['reduce_cell']})", ""]
        lines += ["### Search: architecture weights", ""]
        lines += ([f"![architecture weights per epoch]({FIGURES['arch_trajectories']})", ""] if searched
                  else ["No search run: the genotype was given, so there are no α/β trajectories.", ""])
        return lines

    return draw


def collapse_section(epoch_records: Sequence[Mapping], collapsed_at: int = 6) -> list[str]:
    """The report's table of the search's collapse diagnostics per epoch (from `epochs.jsonl`), and a
    plain sentence when the final normal cell has `collapsed_at` or more parameter-free ops of its 8."""
    columns = ("normal_skip", "normal_pool", "normal_parameter_free", "normal_alpha_entropy", "hessian_eigenvalue")
    rows = [r for r in epoch_records if "normal_parameter_free" in r]
    if not rows:
        return []
    lines = ["## Search: collapse diagnostics", "",
             "Per epoch: skip connections, pools and all parameter-free ops among the derived normal cell's 8 "
             "edges, the mean entropy of softmax(α) over its 14 edges (log 8 = 2.08 is undecided), and the "
             "dominant eigenvalue of the validation loss's Hessian w.r.t. α/β (its growth foretells collapse, "
             "RobustDARTS).", "", "| epoch | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for record in rows:
        values = [record.get(name) for name in columns]
        lines.append(f"| {record['epoch']} | " + " | ".join("-" if v is None else f"{v:.4g}" for v in values) + " |")
    final = rows[-1]["normal_parameter_free"]
    verdict = (f"**The search collapsed**: the final normal cell has {final} parameter-free ops of 8 (skip "
               f"connections and pools). Consider the remedies (`--beta-decay`, `--max-skips`)."
               if final >= collapsed_at else f"The final normal cell has {final} parameter-free ops of 8.")
    return lines + ["", verdict, ""]
