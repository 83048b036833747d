"""Face presentation-attack detection figures (ISO/IEC 30107-3) of a scored corpus, at a dev-fixed threshold.

The threshold is the dev set's EER threshold (`metrics.compute_eer`; accepted as live when score > it) and
is applied unchanged to every test split: intra-domain APCER (worst species), BPCER and ACER, cross-domain
HTER, and the threshold-free AUC of every split.
"""
from __future__ import annotations

import numpy as np

from darts_jax.spoofing.classification import hter, pad_error_rates, roc_auc
from darts_jax.spoofing.metrics import compute_eer


def _by_class(scores, labels):
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels)
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.shape[0] if scores.ndim else 0} scores for {labels.shape[0]} labels")
    if not ((labels == 1).any() and (labels == 0).any()):
        raise ValueError("a split needs both live (label 1) and attack (label 0) images")
    return scores[labels == 1], scores[labels == 0]


def dev_threshold(scores, labels) -> tuple[float, float]:
    """(dev EER, its threshold)."""
    live, attack = _by_class(scores, labels)
    return compute_eer(live, attack)


def split_figures(scores, labels, attacks, threshold: float) -> dict:
    """APCER (worst species) / BPCER / ACER, HTER and AUC of one split at `threshold`, as fractions."""
    live, attack = _by_class(scores, labels)
    scores, labels, attacks = np.asarray(scores, np.float64), np.asarray(labels), np.asarray(attacks)
    species = {name: scores[(labels == 0) & (attacks == name)] for name in sorted(set(attacks[labels == 0]))}
    rates = pad_error_rates(live, species, threshold)
    return {"apcer": rates.apcer, "bpcer": rates.bpcer, "acer": rates.acer, "hter": hter(live, attack, threshold),
            "auc": roc_auc(live, attack), "apcer_per_species": rates.apcer_per_species}


def pad_report(scored: dict[str, dict], dev_split: str = "dev") -> dict:
    """`scored[split] = {"score", "label", "attack"}`: the dev EER threshold and every other split's figures."""
    if dev_split not in scored:
        raise ValueError(f"no {dev_split!r} split among {sorted(scored)}: the threshold is fixed on it")
    dev = scored[dev_split]
    eer, threshold = dev_threshold(dev["score"], dev["label"])
    report = {"threshold": threshold, "dev_eer": eer}
    for split, values in scored.items():
        report[split] = split_figures(values["score"], values["label"], values["attack"], threshold)
    return report


def depth_separation(mean_depth, labels) -> dict:
    """How well the mean predicted depth alone tells live from attack: its AUC."""
    live, attack = _by_class(mean_depth, labels)
    return {"depth_auc": roc_auc(live, attack)}


def dev_eer_metrics(scores, labels) -> dict:
    """The per-epoch dev monitor of a classifier: dev EER in percent and dev AUC."""
    live, attack = _by_class(scores, labels)
    return {"dev_eer_percent": 100 * compute_eer(live, attack)[0], "dev_auc": roc_auc(live, attack)}


def format_pad_table(rows: dict[str, dict]) -> str:
    """A markdown table of `rows[name] = {column: text}`, columns in the first row's order."""
    columns = list(next(iter(rows.values())))
    lines = ["| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(str(values[c]) for c in columns) + " |" for name, values in rows.items()]
    return "\n".join(lines)


def evaluate_depth_run(workdir, splits: dict[str, dict]) -> dict:
    """The PAD report of the newest checkpoint of a `depth-train` run on `splits` (which must hold dev)."""
    from pathlib import Path

    from darts_jax.engine.checkpoint import load_weights
    from darts_jax.engine.config import load_json
    from darts_jax.engine.state import count_params
    from darts_jax.tasks.pseudodepth.train import DepthTrainConfig, image_scores

    config = load_json(DepthTrainConfig, Path(workdir) / "config.json")
    step, variables = load_weights(workdir)
    scored = {split: {**image_scores(config, variables, arrays), "label": arrays["label"], "attack": arrays["attack"]}
              for split, arrays in splits.items()}
    report = pad_report(scored)
    return {"workdir": str(workdir), "step": step, "method": config.method,
            "parameters": count_params(variables["params"]), **report}
