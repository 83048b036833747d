"""The adaptation report of a protocol run: per-seed rows, the mean ± std table, the verdicts, a plot.

Writes into the run folder: rows.jsonl (one line per method and seed), report.md (the tables, the
preconditions and the claim's verdict) and adaptation.png (forgetting and target accuracy per method).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from darts_jax.plotting import save_figure

FIELDS = ("source_acc", "source_eer", "target_acc", "target_eer", "mean_acc", "forgetting", "wall_s")


def method_order(rows: list[dict]) -> list[str]:
    return list(dict.fromkeys(r["method"] for r in rows))


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per method, each field as mean ± std over the seeds (sample std, ddof 1)."""
    lines = ["| method | seeds | " + " | ".join(FIELDS) + " |", "|---" * (len(FIELDS) + 2) + "|"]
    for method in method_order(rows):
        values = {f: np.array([r[f] for r in rows if r["method"] == method]) for f in FIELDS}
        cells = [f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.1f}" for v in values.values()]
        lines.append(f"| {method} | {len(values[FIELDS[0]])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_seed_table(rows: list[dict]) -> str:
    fields = ("source_acc", "target_acc", "forgetting", "target_eer")
    lines = ["| method | seed | " + " | ".join(fields) + " |", "|---" * (len(fields) + 2) + "|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['seed']} | " + " | ".join(f"{r[f]:.1f}" for f in fields) + " |")
    return "\n".join(lines)


def plot(rows: list[dict], path) -> None:
    methods = method_order(rows)
    fig = Figure(figsize=(8, 3.5))
    for i, (field, title) in enumerate((("forgetting", "forgetting (points of source accuracy)"),
                                        ("target_acc", "target accuracy %"))):
        ax = fig.add_subplot(1, 2, i + 1)
        values = [np.array([r[field] for r in rows if r["method"] == m]) for m in methods]
        ax.bar(range(len(methods)), [v.mean() for v in values],
               yerr=[v.std(ddof=1) if len(v) > 1 else 0.0 for v in values], capsize=3)
        for j, v in enumerate(values):
            ax.plot(np.full(len(v), j), v, "k.", markersize=4)
        ax.set_xticks(range(len(methods)), methods, rotation=45, ha="right")
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def write_report(rows: list[dict], preconditions: dict, verdict: dict | None, settings: dict, out) -> Path:
    """Writes rows.jsonl, report.md and adaptation.png into OUT (created); returns report.md's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pre = (f"zero-shot target accuracy {preconditions['zero_shot_target_acc']:.1f} % (needs <= 70: "
           f"{'met' if preconditions['zero_shot_ok'] else 'NOT met'}); FT forgetting "
           f"{preconditions['ft_forgetting']:.1f} points (needs >= 10: "
           f"{'met' if preconditions['ft_forgetting_ok'] else 'NOT met'})")
    if verdict is None:
        claim = ("not judged: the preconditions do not hold, so the setting cannot test the claim."
                 if not preconditions["hold"] else "not judged: the run did not include both FT and FReTAL.")
    else:
        claim = (f"forgetting(FT) − forgetting(FReTAL) = {verdict['forgetting_gain_mean']:.1f} points on average "
                 f"(needs >= 5), positive in {verdict['paired_wins']} of {verdict['seeds']} seeds (needs "
                 f"{verdict['wins_needed']}); target accuracy FReTAL − FT = {verdict['target_gap_mean']:.1f} points "
                 f"(needs >= −3). The claim {'HOLDS' if verdict['holds'] else 'does NOT hold'}.")
        if "mean_acc_minus_kd_mean" in verdict:
            claim += (f" Reported, not judged: mean accuracy FReTAL − KD = {verdict['mean_acc_minus_kd_mean']:.1f} "
                      f"points (per seed {', '.join(f'{v:.1f}' for v in verdict['mean_acc_minus_kd_per_seed'])}).")
    text = "\n\n".join([
        f"# Source-free adaptation: {rows[0]['setting']}", "Settings: `" + json.dumps(settings) + "`",
        "Preconditions: " + pre, "Claim: " + claim, "## Mean ± std over seeds", summary_table(rows),
        "Accuracy: mean of the per-class accuracies at logit threshold 0; EER in %; forgetting = the teacher's "
        "source accuracy − the method's; wall_s: seconds per adaptation run (compile included).",
        "![adaptation](adaptation.png)", "## Per seed", per_seed_table(rows)])
    (out / "report.md").write_text(text + "\n")
    plot(rows, out / "adaptation.png")
    return out / "report.md"
