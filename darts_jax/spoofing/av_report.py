"""Audio-visual detection figures per SynthAV category, as FakeAVCeleb reports them, and a ROC plot.

Scores are "more real" when higher (the logit difference real - fake). Each fake category is scored
against the real one (RVRA): ROC-AUC, EER, and accuracy and balanced accuracy of the classifier's own
decision (score > 0, the argmax); "all" pools every fake category.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from darts_jax.data.synthav.corpus import CATEGORIES, REAL
from darts_jax.plotting import save_figure
from darts_jax.spoofing.classification import balanced_accuracy, roc_auc
from darts_jax.spoofing.metrics import compute_eer

METRICS = ("auc", "eer_percent", "accuracy", "balanced_accuracy")


def category_metrics(scores_N, categories_N) -> dict:
    """{category or 'all': {auc, eer_percent, accuracy, balanced_accuracy, clips}} against RVRA."""
    scores_N, categories_N = np.asarray(scores_N, np.float64), np.asarray(categories_N)
    real = scores_N[categories_N == REAL]
    if real.size == 0:
        raise ValueError(f"no {REAL} clips among the scores: the per-category figures compare with them")
    groups = {c: scores_N[categories_N == c] for c in CATEGORIES if c != REAL and np.any(categories_N == c)}
    groups["all"] = scores_N[categories_N != REAL]
    result = {}
    for name, fake in groups.items():
        accepted = np.concatenate([real > 0, fake > 0])
        truth = np.concatenate([np.ones(real.size, bool), np.zeros(fake.size, bool)])
        result[name] = {"auc": roc_auc(real, fake), "eer_percent": 100 * compute_eer(real, fake)[0],
                        "accuracy": float(np.mean(accepted == truth)),
                        "balanced_accuracy": balanced_accuracy(real, fake, 0.0), "clips": int(fake.size)}
    return result


def roc_points(real_scores, fake_scores) -> tuple[np.ndarray, np.ndarray]:
    """(false-positive rate, true-positive rate) of "real" at every threshold, from (0, 0) to (1, 1)."""
    real, fake = np.asarray(real_scores, np.float64), np.asarray(fake_scores, np.float64)
    thresholds = np.unique(np.concatenate([real, fake]))[::-1]
    tpr = np.array([0.0] + [np.mean(real >= t) for t in thresholds])
    fpr = np.array([0.0] + [np.mean(fake >= t) for t in thresholds])
    return fpr, tpr


def plot_roc(scores_by_model: dict, categories_N, path, category: str = "all") -> Path:
    """ROC curves of `category` (a fake category, or 'all') against RVRA, one curve per model."""
    categories_N = np.asarray(categories_N)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    for name, scores in scores_by_model.items():
        scores = np.asarray(scores)
        fake = scores[categories_N != REAL] if category == "all" else scores[categories_N == category]
        real = scores[categories_N == REAL]
        fpr, tpr = roc_points(real, fake)
        ax.plot(fpr, tpr, label=f"{name} (AUC {roc_auc(real, fake):.3f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=0.8)
    ax.set_xlabel(f"fake accepted ({category})")
    ax.set_ylabel("real accepted (RVRA)")
    ax.set_title(f"SynthAV eval: RVRA vs {category}")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path)
    return Path(path)


def format_table(metrics_by_model: dict, metric: str = "auc") -> str:
    """A markdown table: one row per model, one column per category (and 'all')."""
    columns = [c for c in CATEGORIES if c != REAL] + ["all"]
    lines = [f"| model ({metric}) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, metrics in metrics_by_model.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[c][metric]:.3f}" if c in metrics else "-"
                                                 for c in columns) + " |")
    return "\n".join(lines)
