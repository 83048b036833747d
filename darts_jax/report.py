"""A run's report: `report.md` with settings, genotype, metrics, timings and figures beside it.

Figures are drawn on `matplotlib.figure.Figure` objects directly (Agg canvas, no pyplot), so making a
report touches no global plotting state and needs no display.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch
from matplotlib.ticker import MaxNLocator
from scipy.special import softmax
from scipy.stats import norm

from darts_jax.config import PRIMITIVES
# genotype's row helper rather than search_space's EDGE_STARTS: that module would import jax and flax.
from darts_jax.genotype import INPUTS_PER_NODE, NODES, NUM_MIXED_EDGES, Genotype, node_edge_rows
from darts_jax.metrics import compute_eer, det_curve
from darts_jax.data.protocols import SAME_AS_TRAIN_ATTACK, TRAIN_ATTACKS
from darts_jax.scores import CmScores

FIGURES = {"normal_cell": "normal_cell.png", "reduce_cell": "reduce_cell.png",
           "arch_trajectories": "arch_trajectories.png", "det": "det.png", "score_histograms": "score_histograms.png"}
DET_TICKS_PERCENT = (0.1, 0.5, 1, 2, 5, 10, 20, 40)
_DET_LIMITS = (0.0005, 0.55)
_DPI = 100
_NODE_RADIUS = 0.55  # data units of the cell drawing
_STATE_NAMES = ("$c_{k-2}$", "$c_{k-1}$")
_SOURCE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")


def _save(fig: Figure, path) -> Figure:
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    fig.savefig(path, dpi=_DPI)
    return fig


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
    return _save(fig, path)


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
        edge_weights = np.concatenate([softmax(betas[:, node_edge_rows(node)], axis=1) for node in range(NODES)],
                                      axis=1)
        weights[cell] = (softmax(alphas, axis=2).mean(axis=1), edge_weights)
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
    return _save(fig, path)


# ---------------------------------------------------------------------------------------- scores

def _probit(rates) -> np.ndarray:
    # Rates of 0 or 1 map to points far outside the axes instead of ±inf, so the curve runs off the edge.
    return norm.ppf(np.clip(np.asarray(rates, dtype=np.float64), 1e-9, 1 - 1e-9))


def plot_det(bona_scores, spoof_scores, path, label: str | None = None) -> Figure:
    """DET curve (miss vs false alarm, probit axes) with the EER point of `compute_eer` marked."""
    frr, far, _ = det_curve(bona_scores, spoof_scores)
    eer, _ = compute_eer(bona_scores, spoof_scores)
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(_probit(far), _probit(frr), color="C0", linewidth=1.8, label=label or "CM")
    ax.plot(_probit(eer), _probit(eer), "o", color="C3", markersize=8, gid="eer",
            label=f"EER {100 * eer:.2f} %")
    limits = norm.ppf(_DET_LIMITS)
    ax.plot(limits, limits, color="0.6", linewidth=0.8, linestyle=":")
    ticks, tick_labels = norm.ppf(np.array(DET_TICKS_PERCENT) / 100), [f"{t:g}" for t in DET_TICKS_PERCENT]
    ax.set_xticks(ticks, tick_labels)
    ax.set_yticks(ticks, tick_labels)
    ax.set_xlim(limits)
    ax.set_ylim(limits)
    ax.set_aspect("equal")
    ax.grid(alpha=0.4)
    ax.set_xlabel("false alarm rate: spoofs accepted (%)")
    ax.set_ylabel("miss rate: bona fide rejected (%)")
    ax.set_title("DET curve")
    ax.legend(loc="best")
    return _save(fig, path)


def attack_status(attack: str) -> str:
    """Whether a spoofing attack ID was seen in training (ASVspoof 2019 LA attack IDs)."""
    if attack in TRAIN_ATTACKS:
        return "training attack"
    if attack in SAME_AS_TRAIN_ATTACK:
        return f"known (= {SAME_AS_TRAIN_ATTACK[attack]})"
    if attack.startswith("A") and attack[1:].isdigit() and 7 <= int(attack[1:]) <= 19:
        return "unseen"
    return "unknown ID"


def plot_score_histograms(cm_scores: CmScores, path) -> Figure:
    """Bona fide vs spoof score histograms, and per-attack score boxes on the same score axis."""
    is_bona = cm_scores.keys == "bonafide"
    bona, spoof = cm_scores.scores[is_bona], cm_scores.scores[~is_bona]
    _, threshold = compute_eer(bona, spoof)
    attacks = sorted(map(str, np.unique(cm_scores.attacks[~is_bona])))
    low, high = float(cm_scores.scores.min()), float(cm_scores.scores.max())
    if low == high:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, 51)
    fig = Figure(figsize=(9, 4 + 0.3 * len(attacks)), layout="constrained")
    hist_ax, box_ax = fig.subplots(2, 1, sharex=True, height_ratios=[1, 0.35 + 0.08 * len(attacks)])
    hist_ax.hist(bona, bins=bins, density=True, histtype="stepfilled", alpha=0.45, color="C2",
                 label=f"bona fide ({bona.size})")
    hist_ax.hist(spoof, bins=bins, density=True, histtype="stepfilled", alpha=0.45, color="C3",
                 label=f"spoof ({spoof.size})")
    hist_ax.set_ylabel("density")
    hist_ax.set_title("CM scores (higher = more bona fide)")
    groups = [bona] + [spoof[cm_scores.attacks[~is_bona] == attack] for attack in attacks]
    names = ["bona fide"] + [f"{attack}: {attack_status(attack)}" for attack in attacks]
    boxes = box_ax.boxplot(groups, orientation="horizontal", tick_labels=names, whis=(1, 99), showfliers=False,
                           patch_artist=True, widths=0.6, medianprops={"color": "0.1", "linewidth": 1.5})
    for box, attack in zip(boxes["boxes"], ["bonafide"] + attacks):
        box.set_facecolor("C2" if attack == "bonafide" else "C1" if attack_status(attack) == "unseen" else "C3")
        box.set_alpha(0.6)
    box_ax.invert_yaxis()
    box_ax.set_xlabel("score (boxes: quartiles, whiskers: 1st-99th percentile)")
    for ax in (hist_ax, box_ax):
        ax.axvline(threshold, color="0.2", linestyle="--", linewidth=1)
        ax.grid(alpha=0.3, axis="x")
    hist_ax.plot([], [], color="0.2", linestyle="--", label=f"EER threshold {threshold:.3g}")
    hist_ax.legend(fontsize=9)
    return _save(fig, path)


# -------------------------------------------------------------------------------------- markdown

def _cell(value) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(map(_cell, header)) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(map(_cell, row)) + " |" for row in rows] + [""]


def _tdcf_text(value, missing: str = "not available (no ASV scores)") -> str:
    return missing if value is None else f"{value:.4f}"


def _duration_text(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min {secs:02d} s" if hours else f"{minutes} min {secs:02d} s"


def _timing_rows(timings: Mapping[str, float]) -> list[list[str]]:
    for phase, seconds in timings.items():
        if not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"timings[{phase!r}] = {seconds!r}: a phase time must be a finite number of seconds >= 0")
    total = sum(timings.values())
    rows = [[phase, f"{seconds:.1f}", _duration_text(seconds)] for phase, seconds in timings.items()]
    return rows + [["**total**", f"**{total:.1f}**", f"**{_duration_text(total)}**"]]


def _reference_lines(reference: Mapping, metrics: Mapping, params: int) -> list[str]:
    if "source" not in reference:
        raise ValueError("reference: give a 'source' saying where the published numbers come from")

    def value(mapping, key, text):
        return "-" if mapping.get(key) is None else text(mapping[key])

    rows = [[f"published: {reference['source']}", value(reference, "eer_percent", lambda v: f"{v:.2f}"),
             value(reference, "min_tdcf", lambda v: f"{v:.4f}"), value(reference, "params", lambda v: f"{v:,}")],
            ["this run (see Results above)", f"{metrics['eer_percent']:.2f}", _tdcf_text(metrics["min_tdcf"]),
             f"{params:,}"]]
    return (["## Published reference", ""]
            + _table(["system (source)", "EER (%)", "min t-DCF", "parameters"], rows)
            + ["SynthSpoof numbers are not comparable to ASVspoof 2019 LA numbers: the data, the attacks and "
               "the scale all differ, so the published row is context, not a target.", ""])


def write_report(out_dir, *, title: str, genotype: Genotype, params: int, metrics: Mapping,
                 timings: Mapping[str, float], cm_scores: CmScores, genotype_records: Sequence[Mapping] | None,
                 primitives: Sequence[str], settings: Mapping, reference: Mapping | None = None) -> Path:
    """Writes `report.md` and its figures into `out_dir` (created if missing); returns the report's path.

    `metrics` is an `evaluate_scores` result; `genotype_records` the search's `genotypes.jsonl`
    records (None or empty when the genotype was given rather than searched).
    """
    # Everything that can be refused is checked before anything is written.
    missing = [key for key in ("eer_percent", "min_tdcf", "bonafide_trials", "spoof_trials", "per_attack")
               if key not in metrics]
    if missing:
        raise ValueError(f"metrics: missing {missing}; pass the result of darts_jax.metrics.evaluate_scores")
    timing_rows = _timing_rows(timings)
    reference_lines = [] if reference is None else _reference_lines(reference, metrics, params)
    searched = bool(genotype_records)
    trajectories = _arch_weights(genotype_records, primitives) if searched else None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for kind in ("normal", "reduce"):
        plot_cell(genotype, kind, out_dir / FIGURES[f"{kind}_cell"])
    is_bona = cm_scores.keys == "bonafide"
    plot_det(cm_scores.scores[is_bona], cm_scores.scores[~is_bona], out_dir / FIGURES["det"], label=title)
    plot_score_histograms(cm_scores, out_dir / FIGURES["score_histograms"])
    if searched:
        _draw_arch_trajectories(*trajectories, primitives, out_dir / FIGURES["arch_trajectories"])

    attack_rows = [[attack, attack_status(attack), row["spoof_trials"], f"{row['eer_percent']:.2f}",
                    _tdcf_text(row["min_tdcf"], "n/a")] for attack, row in metrics["per_attack"].items()]
    lines = [f"# {title}", "", "## Settings", ""]
    lines += _table(["setting", "value"], list(settings.items()))
    lines += ["## Architecture", "", "Genotype (PyTorch form):", "", "```text", genotype.to_string(), "```", "",
              f"Trainable parameters: **{params:,}**", "",
              f"![normal cell]({FIGURES['normal_cell']})", "", f"![reduction cell]({FIGURES['reduce_cell']})", ""]
    lines += ["### Search: architecture weights", ""]
    lines += ([f"![architecture weights per epoch]({FIGURES['arch_trajectories']})", ""] if searched
              else ["No search run: the genotype was given, so there are no α/β trajectories.", ""])
    lines += ["## Results", ""]
    lines += _table(["metric", "value"], [
        ["pooled EER", f"{metrics['eer_percent']:.2f} %"],
        ["pooled min t-DCF", _tdcf_text(metrics["min_tdcf"])],
        ["trials", f"{metrics['bonafide_trials']} bona fide, {metrics['spoof_trials']} spoof"]])
    lines += ["Per attack (each against all bona fide trials). \"unseen\": the attack is not among the training "
              "attacks A01-A06; \"known\": the same system as a training attack (A16 = A04, A19 = A06).", ""]
    lines += _table(["attack", "in training?", "spoof trials", "EER (%)", "min t-DCF"], attack_rows)
    lines += [f"![DET curve]({FIGURES['det']})", "", f"![score distributions]({FIGURES['score_histograms']})", ""]
    lines += ["## Time per phase", ""] + _table(["phase", "seconds", "duration"], timing_rows)
    lines += reference_lines
    report_path = out_dir / "report.md"
    report_path.write_text("\n".join(lines), encoding="utf-8")
    return report_path
