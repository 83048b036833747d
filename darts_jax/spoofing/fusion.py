"""Linear logistic-regression fusion of several CM systems' score files.

fused LLR = sum_k w_k * score_k + b, fitted on dev score files with the prior-weighted objective of
darts_jax.spoofing.calibration (so the fused scores are also calibrated LLRs), then applied to the
eval files of the same systems in the same order. Trials are matched by utterance id: every file of
a partition must hold exactly the same ids, with the same key and attack, or nothing is fitted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from darts_jax.spoofing.calibration import fit_logistic
from darts_jax.spoofing.metrics import compute_eer
from darts_jax.spoofing.scores import cm_keys, read_cm_scores, write_cm_scores

_SHOWN_IDS = 5  # ids named in a mismatch error before "and N more"


def _id_list(ids) -> str:
    ids = sorted(ids)
    more = f" and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else ""
    return ", ".join(ids[:_SHOWN_IDS]) + more


def align_score_files(paths) -> tuple[object, np.ndarray]:
    """(trials of the first file, scores (N, systems)) with rows in the first file's order.

    Raises a ValueError naming the ids that one file has and the first has not (or the reverse), or a
    trial whose key or attack differs between files.
    """
    if not paths:
        raise ValueError("no score files given")
    first = read_cm_scores(paths[0])
    ids = list(first.utt_ids)
    columns = [first.scores]
    for path in paths[1:]:
        other = read_cm_scores(path)
        row_of = {utt_id: row for row, utt_id in enumerate(other.utt_ids)}
        missing, extra = set(ids) - set(row_of), set(row_of) - set(ids)
        if missing or extra:
            problems = []
            if missing:
                problems.append(f"{len(missing)} utterance(s) of {paths[0]} are missing from it ({_id_list(missing)})")
            if extra:
                problems.append(f"{len(extra)} utterance(s) are not in {paths[0]} ({_id_list(extra)})")
            raise ValueError(f"{path}: does not score the same trials: " + "; ".join(problems))
        rows = np.array([row_of[utt_id] for utt_id in ids])
        for name, mine, theirs in (("key", first.labels, other.labels[rows]),
                                   ("attack", first.attacks, other.attacks[rows])):
            differ = np.flatnonzero(np.asarray(mine) != np.asarray(theirs))
            if differ.size:
                raise ValueError(f"{path}: the {name} of {differ.size} trial(s) differs from {paths[0]} "
                                 f"({_id_list(np.asarray(ids)[differ].tolist())})")
        columns.append(other.scores[rows])
    return first, np.stack(columns, axis=1)


def fuse_files(dev_paths, eval_paths, out_path, prior: float = 0.5, overwrite: bool = False) -> dict:
    """Fits the fusion on `dev_paths`, writes the fused eval scores to `out_path`, returns weights and EERs."""
    if len(dev_paths) != len(eval_paths):
        raise ValueError(f"--dev gives {len(dev_paths)} systems and --eval {len(eval_paths)}: give the dev and eval "
                         f"score files of the same systems, in the same order")
    if len(dev_paths) < 2:
        raise ValueError("fusion needs at least two systems (for one, use `darts-jax calibrate`)")
    dev_trials, dev_scores = align_score_files(dev_paths)
    eval_trials, eval_scores = align_score_files(eval_paths)
    weights, bias = fit_logistic(dev_scores, dev_trials.labels, prior)
    fused = eval_scores @ weights + bias
    write_cm_scores(out_path, eval_trials.utt_ids, eval_trials.attacks, cm_keys(eval_trials.labels), fused,
                    overwrite=overwrite)
    is_bona = eval_trials.labels == 1

    def eer_percent(scores):
        return 100 * compute_eer(scores[is_bona], scores[~is_bona])[0]

    return {"weights": weights.tolist(), "bias": bias, "prior": prior,
            "systems": [str(Path(p)) for p in eval_paths],
            "eval_eer_percent": [eer_percent(eval_scores[:, k]) for k in range(eval_scores.shape[1])],
            "fused_eval_eer_percent": eer_percent(fused)}


def run_fuse(dev_paths, eval_paths, out_path, *, prior: float = 0.5, overwrite: bool = False,
             as_json: bool = False) -> int:
    """`darts-jax fuse`: fits, writes, and prints each system's weight and EER and the fused EER."""
    result = fuse_files(dev_paths, eval_paths, out_path, prior, overwrite)
    for system, weight, eer in zip(result["systems"], result["weights"], result["eval_eer_percent"]):
        print(f"{system}: weight {weight:.6g}, eval EER {eer:.3f} %")
    print(f"bias {result['bias']:.6g}; fused eval EER {result['fused_eval_eer_percent']:.3f} %")
    print(f"fused scores (LLRs) written to {out_path}")
    if as_json:
        print(json.dumps(result))
    return 0
