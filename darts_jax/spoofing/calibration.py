"""Score calibration: raw CM scores to log-likelihood ratios, and the operating points stored with a model.

The calibration is linear logistic regression, LLR = slope * score + offset, fitted by minimising the
prior-weighted cross-entropy of Brümmer's FoCal / BOSARIS toolkits:

    prior * mean_bona log(1 + e^-(llr + logit prior)) + (1 - prior) * mean_spoof log(1 + e^(llr + logit prior))

Weighting each class by its prior (not by its trial count) makes the result an LLR whatever the
class proportions of the dev set; at prior 0.5 the objective is Cllr (in nats). Fusion
(darts_jax.spoofing.fusion) fits the same objective with one weight per system.

The objective and its gradient are written here and minimised with scipy.optimize (L-BFGS-B): the
pinned libraries have no prior-weighted logistic regression (scikit-learn is not a dependency).

A calibration file (`darts-jax calibrate`) also keeps the dev set's EER threshold and its sorted spoof
scores, so `predict` can decide at the EER threshold or at any target false-acceptance rate.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from darts_jax.engine.config import read_json
from darts_jax.spoofing.metrics import compute_cllr, compute_eer, compute_min_cllr
from darts_jax.spoofing.scores import _write_atomically, read_cm_scores

FORMAT = "darts_jax-calibration-1"
MODEL_FILE = "calibration.json"  # its name inside a model folder


def fit_logistic(features_NxD, labels_N, prior: float = 0.5) -> tuple[np.ndarray, float]:
    """(weights (D,), bias) with weights . x + bias the LLR of bona fide (label 1), prior-weighted."""
    if not 0 < prior < 1:
        raise ValueError(f"prior: {prior} must be strictly between 0 and 1")
    features = np.asarray(features_NxD, np.float64)
    labels = np.asarray(labels_N)
    is_bona = labels == 1
    if not is_bona.any() or is_bona.all():
        raise ValueError("calibration needs both bona fide and spoof trials")
    # Standardised features keep L-BFGS well conditioned for raw logits of any scale.
    mean, scale = features.mean(0), features.std(0)
    scale[scale == 0] = 1.0
    design = np.concatenate([(features - mean) / scale, np.ones((len(features), 1))], axis=1)
    # Each trial's weight in the objective, and its sign: +1 bona fide, -1 spoof.
    trial_weight = np.where(is_bona, prior / is_bona.sum(), (1 - prior) / (~is_bona).sum())
    sign = np.where(is_bona, 1.0, -1.0)
    prior_logit = math.log(prior / (1 - prior))

    def objective(params):
        margin = sign * (design @ params + prior_logit)
        loss = trial_weight @ np.logaddexp(0, -margin)
        # d/dm log(1 + e^-m) = -sigmoid(-m)
        gradient = design.T @ (trial_weight * sign * -np.exp(-np.logaddexp(0, margin)))
        return loss, gradient

    result = minimize(objective, np.zeros(design.shape[1]), jac=True, method="L-BFGS-B",
                      options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 1000})
    if not np.all(np.isfinite(result.x)):
        raise FloatingPointError(f"logistic regression diverged: {result.message}")
    weights = result.x[:-1] / scale
    return weights, float(result.x[-1] - weights @ mean)


@dataclasses.dataclass(frozen=True)
class Calibration:
    """LLR = slope * raw score + offset, with the dev set's operating points."""

    slope: float
    offset: float
    prior: float
    eer_threshold: float  # raw-score threshold at the dev EER
    dev_eer_percent: float
    dev_spoof_scores: tuple[float, ...]  # sorted ascending, for --target-far
    dev_bonafide_trials: int
    source: str

    def llr(self, scores):
        return self.slope * np.asarray(scores, np.float64) + self.offset

    def apply(self, trials):
        """The same `Scores` record with LLRs as its scores."""
        return dataclasses.replace(trials, scores=self.llr(trials.scores))

    def threshold_for_far(self, target_far: float) -> float:
        """The lowest raw-score threshold at which at most `target_far` of the dev spoofs reach it (score >= t)."""
        if not 0 <= target_far <= 1:
            raise ValueError(f"--target-far: {target_far} must be between 0 and 1 (a fraction, not percent)")
        spoof = np.asarray(self.dev_spoof_scores)
        allowed = math.floor(target_far * spoof.size + 1e-9)
        if allowed >= spoof.size:
            return -math.inf
        # Just above the (allowed+1)-th highest spoof score, so exactly `allowed` (fewer with ties) pass.
        return float(np.nextafter(spoof[spoof.size - 1 - allowed], np.inf))

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["dev_spoof_scores"] = list(self.dev_spoof_scores)
        return {"format": FORMAT, **data}

    @classmethod
    def from_dict(cls, data: dict, where: str) -> Calibration:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{where}: not a calibration file (format {FORMAT!r}); make one with "
                             f"`darts-jax calibrate`")
        fields = {f.name for f in dataclasses.fields(cls)}
        missing = sorted(fields - set(data))
        if missing:
            raise ValueError(f"{where}: missing field(s) {', '.join(missing)}")
        values = {name: data[name] for name in fields}
        values["dev_spoof_scores"] = tuple(float(v) for v in values["dev_spoof_scores"])
        for name in ("slope", "offset", "prior", "eer_threshold"):
            if not isinstance(values[name], (int, float)) or not math.isfinite(values[name]):
                raise ValueError(f"{where}: field {name} = {values[name]!r} must be a finite number")
        return cls(**values)


def calibrate_scores(trials, prior: float = 0.5, source: str = "") -> Calibration:
    """The calibration of a `Scores` record of dev trials."""
    (slope,), offset = fit_logistic(trials.scores[:, None], trials.labels, prior)
    bona, spoof = trials.scores[trials.labels == 1], trials.scores[trials.labels == 0]
    eer, threshold = compute_eer(bona, spoof)
    return Calibration(float(slope), offset, prior, threshold, 100 * eer, tuple(np.sort(spoof).tolist()),
                       int(bona.size), source)


def calibrate_file(cm_scores_path, out_path, prior: float = 0.5, overwrite: bool = False) -> dict:
    """Fits a calibration on a CM score file and writes it; returns a summary with Cllr before and after."""
    trials = read_cm_scores(cm_scores_path)
    calibration = calibrate_scores(trials, prior, str(Path(cm_scores_path).resolve()))
    _write_atomically(Path(out_path), json.dumps(calibration.to_dict()) + "\n", overwrite)
    is_bona = trials.labels == 1
    llrs = calibration.llr(trials.scores)
    return {"slope": calibration.slope, "offset": calibration.offset, "prior": prior,
            "eer_threshold": calibration.eer_threshold, "dev_eer_percent": calibration.dev_eer_percent,
            "cllr_raw": compute_cllr(trials.scores[is_bona], trials.scores[~is_bona]),
            "cllr_calibrated": compute_cllr(llrs[is_bona], llrs[~is_bona]),
            "min_cllr": compute_min_cllr(trials.scores[is_bona], trials.scores[~is_bona])}


def run_calibrate(cm_scores_path, out_path, *, prior: float = 0.5, overwrite: bool = False,
                  as_json: bool = False) -> int:
    """`darts-jax calibrate`: fits, writes, and prints the fit (and a JSON line with `as_json`)."""
    summary = calibrate_file(cm_scores_path, out_path, prior, overwrite)
    print(f"LLR = {summary['slope']:.6g} * score + {summary['offset']:.6g} (prior {prior:g}); dev EER "
          f"{summary['dev_eer_percent']:.3f} % at score {summary['eer_threshold']:.6g}; Cllr {summary['cllr_raw']:.4f}"
          f" -> {summary['cllr_calibrated']:.4f} bits (min Cllr {summary['min_cllr']:.4f})")
    print(f"calibration written to {out_path}")
    if as_json:
        print(json.dumps(summary))
    return 0


def read_calibration(path) -> Calibration:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: calibration file not found; make one with `darts-jax calibrate`")
    return Calibration.from_dict(read_json(path), str(path))


def model_calibration(model_dir) -> Calibration | None:
    """The calibration stored in a model folder (either format), None when it was exported without one."""
    path = Path(model_dir) / MODEL_FILE
    return read_calibration(path) if path.exists() else None


def store_calibration(model_dir, calibration: Calibration | None) -> None:
    """Writes `calibration` into a (new) model folder; nothing when None."""
    if calibration is not None:
        _write_atomically(Path(model_dir) / MODEL_FILE, json.dumps(calibration.to_dict()) + "\n", overwrite=False)
