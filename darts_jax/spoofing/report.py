"""A run's report: `report.md` with settings, architecture, metrics, timings and figures beside it.

Figures are drawn on `matplotlib.figure.Figure` objects directly (Agg canvas, no pyplot), so making a
report touches no global plotting state and needs no display. The architecture section comes from the
search space (for PC-DARTS, darts_jax.spaces.pcdarts2d.plots.architecture_section).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import norm

from darts_jax.data.protocols import SAME_AS_TRAIN_ATTACK, TRAIN_ATTACKS
from darts_jax.plotting import save_figure
from darts_jax.spoofing.metrics import compute_eer, det_curve
from darts_jax.tasks.evaluate import Scores

FIGURES = {"det": "det.png", "score_histograms": "score_histograms.png"}
DET_TICKS_PERCENT = (0.1, 0.5, 1, 2, 5, 10, 20, 40)
_DET_LIMITS = (0.0005, 0.55)


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
    return save_figure(fig, path)


def attack_status(attack: str) -> str:
    """Whether a spoofing attack ID was seen in training (ASVspoof 2019 LA attack IDs)."""
    if attack in TRAIN_ATTACKS:
        return "training attack"
    if attack in SAME_AS_TRAIN_ATTACK:
        return f"known (= {SAME_AS_TRAIN_ATTACK[attack]})"
    if attack.startswith("A") and attack[1:].isdigit() and 7 <= int(attack[1:]) <= 19:
        return "unseen"
    return "unknown ID"


def plot_score_histograms(cm_scores: Scores, path) -> Figure:
    """Bona fide vs spoof score histograms, and per-attack score boxes on the same score axis."""
    is_bona = cm_scores.labels == 1
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
    return save_figure(fig, path)


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


def _llr_metric_rows(metrics: Mapping) -> list[list[str]]:
    """ASVspoof 5 rows, when the metrics have them (results saved before they existed do not)."""
    if "min_dcf" not in metrics:
        return []
    return [["minDCF (ASVspoof 5 costs)", f"{metrics['min_dcf']:.4f}"],
            ["actDCF (scores read as LLRs)", f"{metrics['act_dcf']:.4f}"],
            ["Cllr / min Cllr (bits)", f"{metrics['cllr']:.4f} / {metrics['min_cllr']:.4f}"]]


def write_report(out_dir, *, title: str, architecture: Callable[[Path], list[str]], params: int, metrics: Mapping,
                 timings: Mapping[str, float], cm_scores: Scores, settings: Mapping,
                 reference: Mapping | None = None, sections: Sequence[str] = ()) -> Path:
    """Writes `report.md` and its figures into `out_dir` (created if missing); returns the report's path.

    `metrics` is an `evaluate_scores` result; `architecture(out_dir)` draws the space's figures there and
    returns the markdown lines of the architecture section; `sections` are further markdown lines (the
    silence audit, say), placed after the results.
    """
    # Everything that can be refused is checked before anything is written.
    missing = [key for key in ("eer_percent", "min_tdcf", "bonafide_trials", "spoof_trials", "per_attack")
               if key not in metrics]
    if missing:
        raise ValueError(f"metrics: missing {missing}; pass the result of darts_jax.spoofing.metrics.evaluate_scores")
    timing_rows = _timing_rows(timings)
    reference_lines = [] if reference is None else _reference_lines(reference, metrics, params)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    is_bona = cm_scores.labels == 1
    plot_det(cm_scores.scores[is_bona], cm_scores.scores[~is_bona], out_dir / FIGURES["det"], label=title)
    plot_score_histograms(cm_scores, out_dir / FIGURES["score_histograms"])

    attack_rows = [[attack, attack_status(attack), row["spoof_trials"], f"{row['eer_percent']:.2f}",
                    _tdcf_text(row["min_tdcf"], "n/a")] for attack, row in metrics["per_attack"].items()]
    lines = [f"# {title}", "", "## Settings", ""]
    lines += _table(["setting", "value"], list(settings.items()))
    lines += architecture(out_dir)
    lines += ["## Results", ""]
    lines += _table(["metric", "value"], [
        ["pooled EER", f"{metrics['eer_percent']:.2f} %"],
        ["pooled min t-DCF", _tdcf_text(metrics["min_tdcf"])],
        *_llr_metric_rows(metrics),
        ["trials", f"{metrics['bonafide_trials']} bona fide, {metrics['spoof_trials']} spoof"]])
    lines += ["Per attack (each against all bona fide trials). \"unseen\": the attack is not among the training "
              "attacks A01-A06; \"known\": the same system as a training attack (A16 = A04, A19 = A06).", ""]
    lines += _table(["attack", "in training?", "spoof trials", "EER (%)", "min t-DCF"], attack_rows)
    lines += [f"![DET curve]({FIGURES['det']})", "", f"![score distributions]({FIGURES['score_histograms']})", ""]
    lines += list(sections)
    lines += ["## Time per phase", ""] + _table(["phase", "seconds", "duration"], timing_rows)
    lines += reference_lines
    report_path = out_dir / "report.md"
    report_path.write_text("\n".join(lines), encoding="utf-8")
    return report_path
