"""ASVspoof metrics: EER, the 2019 min t-DCF (fixed ASV system), per-attack breakdown, accuracy, and the
ASVspoof 5 CM metrics minDCF, actDCF and Cllr / min Cllr.

The DET curve, EER and t-DCF follow the organisers' `tDCF_python_v1` routine step for step so that
results agree to the last bit, ties included: the curve has one point per sorted trial (not per
distinct score), and tied scores are ordered bona fide first by a stable sort.
Higher scores mean "more bona fide" throughout.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.special import xlogy

if TYPE_CHECKING:
    from darts_jax.spoofing.scores import AsvScores
    from darts_jax.tasks.evaluate import Scores


def _score_vector(values, name: str) -> np.ndarray:
    scores = np.asarray(values, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of scores, got shape {scores.shape}")
    if scores.size == 0:
        raise ValueError(f"{name} is empty: the metric needs at least one trial of each class")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name} contains NaN or infinite scores; fix the scoring before evaluating")
    return scores


def det_curve(bona_scores, spoof_scores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FRR, FAR, thresholds), one point per sorted trial plus a first point rejecting nothing.

    Point i (i >= 1) rejects the i lowest trials of the stable sort, so within a group of tied scores
    the curve passes through the pessimistic corner where the group's bona fide trials are already
    rejected but its spoofs are still accepted; the official routine does exactly this.
    """
    bona = _score_vector(bona_scores, "bona_scores")
    spoof = _score_vector(spoof_scores, "spoof_scores")
    pooled = np.concatenate([bona, spoof])
    order = np.argsort(pooled, kind="mergesort")
    bona_rejected = np.cumsum(order < bona.size)
    spoof_rejected = np.arange(1, pooled.size + 1) - bona_rejected
    frr = np.concatenate([[0.0], bona_rejected / bona.size])
    far = np.concatenate([[1.0], (spoof.size - spoof_rejected) / spoof.size])
    # The organisers' fixed 0.001 offset (not a relative one) is kept because it is the reported threshold.
    thresholds = np.concatenate([[pooled[order[0]] - 0.001], pooled[order]])
    return frr, far, thresholds


def compute_eer(bona_scores, spoof_scores) -> tuple[float, float]:
    """Equal error rate (a fraction, not percent) and its threshold, as the official `compute_eer`."""
    frr, far, thresholds = det_curve(bona_scores, spoof_scores)
    best = np.argmin(np.abs(frr - far))
    return float((frr[best] + far[best]) / 2), float(thresholds[best])


@dataclasses.dataclass(frozen=True)
class CostModel:
    """t-DCF priors and costs; the defaults are the ASVspoof 2019 evaluation plan's."""

    p_spoof: float = 0.05
    p_tar: float = (1 - 0.05) * 0.99
    p_non: float = (1 - 0.05) * 0.01
    c_miss_asv: float = 1.0
    c_fa_asv: float = 10.0
    c_miss_cm: float = 1.0
    c_fa_cm: float = 10.0

    def __post_init__(self):
        priors = (self.p_tar, self.p_non, self.p_spoof)
        if min(priors) < 0 or abs(sum(priors) - 1) > 1e-10:
            raise ValueError(f"CostModel priors p_tar, p_non, p_spoof = {priors} must be >= 0 and sum to 1")
        if min(self.c_miss_asv, self.c_fa_asv, self.c_miss_cm, self.c_fa_cm) < 0:
            warnings.warn("CostModel has a negative cost; t-DCF costs are normally positive", stacklevel=3)


class AsvErrorRates(NamedTuple):
    """ASV error rates at its EER threshold (fractions)."""

    p_fa: float
    p_miss: float
    p_miss_spoof: float


def asv_error_rates(asv_target, asv_nontarget, asv_spoof) -> AsvErrorRates:
    """False-alarm, miss and spoof-rejection rates of the ASV system at its target/non-target EER threshold.

    The threshold comes from the EER curve, but the rates accept a trial when score >= threshold, as
    the official routine does.
    """
    target = _score_vector(asv_target, "asv_target")
    nontarget = _score_vector(asv_nontarget, "asv_nontarget")
    spoof = _score_vector(asv_spoof, "asv_spoof (the t-DCF needs ASV scores of spoofed trials)")
    _, threshold = compute_eer(target, nontarget)
    return AsvErrorRates(
        p_fa=float(np.count_nonzero(nontarget >= threshold) / nontarget.size),
        p_miss=float(np.count_nonzero(target < threshold) / target.size),
        p_miss_spoof=float(np.count_nonzero(spoof < threshold) / spoof.size),
    )


class UndefinedTdcf(ValueError):
    """A t-DCF weight is zero, so the normalised t-DCF does not exist."""


def compute_min_tdcf(bona_cm, spoof_cm, asv_rates: AsvErrorRates, cost_model: CostModel = CostModel()) -> float:
    """Minimum normalised ASVspoof 2019 t-DCF of a CM in tandem with a fixed ASV system."""
    bona = _score_vector(bona_cm, "bona_cm")
    spoof = _score_vector(spoof_cm, "spoof_cm")
    if np.unique(np.concatenate([bona, spoof])).size < 3:
        raise ValueError("the CM scores take fewer than 3 distinct values: give soft scores, not decisions")
    p_fa_asv, p_miss_asv, p_miss_spoof_asv = asv_rates
    m = cost_model
    # Operation order matches the official formulas so the result is bit-identical.
    c1 = m.p_tar * (m.c_miss_cm - m.c_miss_asv * p_miss_asv) - m.p_non * m.c_fa_asv * p_fa_asv
    c2 = m.c_fa_cm * m.p_spoof * (1 - p_miss_spoof_asv)
    if c1 < 0 or c2 < 0:
        raise ValueError(f"t-DCF weights C1 = {c1}, C2 = {c2} are negative: check the ASV error rates {asv_rates}")
    if min(c1, c2) == 0:
        raise UndefinedTdcf(f"t-DCF weights C1 = {c1}, C2 = {c2}: a zero weight cannot normalise the t-DCF "
                         f"(C2 is 0 when the ASV rejects every spoof); check the ASV scores")
    p_miss_cm, p_fa_cm, _ = det_curve(bona, spoof)
    tdcf_norm = (c1 * p_miss_cm + c2 * p_fa_cm) / min(c1, c2)
    return float(tdcf_norm.min())


def accuracy(bona_scores, spoof_scores, threshold: float = 0.0) -> float:
    """Fraction of trials on the right side of `threshold` (bona fide above it, spoof at or below it).

    With scores logit_bona - logit_spoof and threshold 0 this equals argmax accuracy, ties going to
    class 0 (spoof) as argmax does.
    """
    bona = _score_vector(bona_scores, "bona_scores")
    spoof = _score_vector(spoof_scores, "spoof_scores")
    correct = np.count_nonzero(bona > threshold) + np.count_nonzero(spoof <= threshold)
    return correct / (bona.size + spoof.size)


@dataclasses.dataclass(frozen=True)
class DcfCosts:
    """The ASVspoof 5 CM cost model: spoof prior 0.05, C_miss 1 (bona fide rejected), C_fa 10 (spoof accepted)."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    def normaliser(self) -> float:
        # The cost of the better of the two trivial systems (accept all, reject all).
        return min(self.c_miss * (1 - self.p_spoof), self.c_fa * self.p_spoof)

    def bayes_threshold(self) -> float:
        """The LLR above which accepting as bona fide has the lower expected cost: -log(beta)."""
        return -float(np.log(self.c_miss * (1 - self.p_spoof) / (self.c_fa * self.p_spoof)))


def compute_min_dcf(bona_scores, spoof_scores, costs: DcfCosts = DcfCosts()) -> float:
    """Normalised ASVspoof 5 DCF at the best threshold over the official DET curve's points."""
    frr, far, _ = det_curve(bona_scores, spoof_scores)
    dcf = costs.c_miss * (1 - costs.p_spoof) * frr + costs.c_fa * costs.p_spoof * far
    return float(dcf.min() / costs.normaliser())


def compute_act_dcf(bona_llrs, spoof_llrs, costs: DcfCosts = DcfCosts()) -> float:
    """Normalised DCF at the Bayes threshold of LLR scores (miss: bona fide < t, false alarm: spoof >= t)."""
    bona = _score_vector(bona_llrs, "bona_llrs")
    spoof = _score_vector(spoof_llrs, "spoof_llrs")
    threshold = costs.bayes_threshold()
    dcf = (costs.c_miss * (1 - costs.p_spoof) * np.mean(bona < threshold)
           + costs.c_fa * costs.p_spoof * np.mean(spoof >= threshold))
    return float(dcf / costs.normaliser())


def compute_cllr(bona_llrs, spoof_llrs) -> float:
    """Cllr in bits: 0.5 (mean log2(1 + e^-llr) over bona fide + mean log2(1 + e^llr) over spoofs)."""
    bona = _score_vector(bona_llrs, "bona_llrs")
    spoof = _score_vector(spoof_llrs, "spoof_llrs")
    # logaddexp(0, x) = log(1 + e^x) without overflow for the large raw logits of uncalibrated scores.
    return float(0.5 * (np.logaddexp(0, -bona).mean() + np.logaddexp(0, spoof).mean()) / np.log(2))


def _pav(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted isotonic (non-decreasing) regression of `values` by pool-adjacent-violators."""
    means, totals, sizes = [], [], []
    for value, weight in zip(values, weights):
        means.append(value)
        totals.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] >= means[-1]:
            weight_sum = totals[-2] + totals[-1]
            merged = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight_sum
            size = sizes[-2] + sizes[-1]
            del means[-1], totals[-1], sizes[-1]
            means[-1], totals[-1], sizes[-1] = merged, weight_sum, size
    return np.repeat(means, sizes)


def compute_min_cllr(bona_scores, spoof_scores) -> float:
    """Cllr (bits) after the best monotone calibration: PAV on the sorted trials (the ROCCH of the scores).

    Tied scores are pooled into one block first, since any calibration maps them to the same LLR. The
    PAV posterior p of a block becomes the LLR logit(p) - log(N_bona / N_spoof); blocks with p = 0 or 1
    hold one class only and cost nothing, so the cost is summed from the posteriors to avoid ±inf.
    """
    bona = _score_vector(bona_scores, "bona_scores")
    spoof = _score_vector(spoof_scores, "spoof_scores")
    pooled = np.concatenate([bona, spoof])
    is_bona = np.concatenate([np.ones(bona.size), np.zeros(spoof.size)])
    unique, block = np.unique(pooled, return_inverse=True)
    block_bona = np.bincount(block, weights=is_bona, minlength=unique.size)
    block_size = np.bincount(block, minlength=unique.size).astype(np.float64)
    posterior = _pav(block_bona / block_size, block_size)
    # Posterior odds of bona fide at the training proportions, turned into per-class likelihoods.
    bona_weight, spoof_weight = posterior / bona.size, (1 - posterior) / spoof.size
    bona_cost = -xlogy(block_bona, bona_weight / (bona_weight + spoof_weight)).sum() / bona.size
    spoof_cost = -xlogy(block_size - block_bona, spoof_weight / (bona_weight + spoof_weight)).sum() / spoof.size
    return float(0.5 * (bona_cost + spoof_cost) / np.log(2))


def llr_metrics(bona_scores, spoof_scores, costs: DcfCosts = DcfCosts()) -> dict:
    """The ASVspoof 5 CM metrics; actDCF and Cllr read the scores as LLRs (natural log)."""
    return {"min_dcf": compute_min_dcf(bona_scores, spoof_scores, costs),
            "act_dcf": compute_act_dcf(bona_scores, spoof_scores, costs),
            "cllr": compute_cllr(bona_scores, spoof_scores),
            "min_cllr": compute_min_cllr(bona_scores, spoof_scores)}


def _min_tdcf_or_none(bona_cm, spoof_cm, asv_trials: AsvScores | None, attack: str | None,
                      cost_model: CostModel) -> float | None:
    """min t-DCF against the ASV spoof trials of `attack` (all attacks when None); None without ASV scores."""
    if asv_trials is None:
        return None
    keys = asv_trials.keys
    asv_spoof = keys == "spoof"
    if attack is not None:
        asv_spoof &= asv_trials.sources == attack
        if not asv_spoof.any():
            raise ValueError(f"the ASV scores have no spoof trials of attack {attack}: use the ASV score "
                             f"file of the same partition as the CM scores")
    rates = asv_error_rates(asv_trials.scores[keys == "target"], asv_trials.scores[keys == "nontarget"],
                            asv_trials.scores[asv_spoof])
    try:
        return compute_min_tdcf(bona_cm, spoof_cm, rates, cost_model)
    except UndefinedTdcf as err:
        if attack is None:
            raise
        # Small corpora: the ASV can reject every spoof of one attack; that attack's t-DCF is undefined.
        warnings.warn(f"attack {attack}: min t-DCF undefined ({err}); reported as n/a", stacklevel=2)
        return None


def evaluate_scores(cm_trials: Scores, asv_trials: AsvScores | None = None,
                    cost_model: CostModel = CostModel()) -> dict:
    """Pooled EER (percent) and min t-DCF (None without ASV scores), and the same per spoofing attack.

    Each attack is scored against all bona fide trials; its t-DCF uses only that attack's ASV spoof trials.
    """
    bona = cm_trials.scores[cm_trials.labels == 1]
    is_spoof = cm_trials.labels == 0
    spoof, spoof_attacks = cm_trials.scores[is_spoof], cm_trials.attacks[is_spoof]
    per_attack = {}
    for attack in map(str, np.unique(spoof_attacks)):
        attack_spoof = spoof[spoof_attacks == attack]
        per_attack[attack] = {
            "eer_percent": 100 * compute_eer(bona, attack_spoof)[0],
            "min_tdcf": _min_tdcf_or_none(bona, attack_spoof, asv_trials, attack, cost_model),
            "spoof_trials": int(attack_spoof.size),
        }
    return {
        "eer_percent": 100 * compute_eer(bona, spoof)[0],
        "min_tdcf": _min_tdcf_or_none(bona, spoof, asv_trials, None, cost_model),
        **llr_metrics(bona, spoof),
        "bonafide_trials": int(bona.size),
        "spoof_trials": int(spoof.size),
        "per_attack": per_attack,
    }


def format_report(result: dict) -> str:
    """A readable table of an `evaluate_scores` result."""
    def tdcf_text(value):
        return "-" if value is None else f"{value:.5f}"

    lines = [
        f"pooled: EER {result['eer_percent']:.5f} %   min t-DCF {tdcf_text(result['min_tdcf'])}   "
        f"({result['bonafide_trials']} bona fide, {result['spoof_trials']} spoof trials)",
    ]
    if "min_dcf" in result:
        lines.append(f"ASVspoof 5: minDCF {result['min_dcf']:.5f}   actDCF {result['act_dcf']:.5f}   "
                     f"Cllr {result['cllr']:.5f} bits   min Cllr {result['min_cllr']:.5f} bits "
                     f"(actDCF and Cllr read the scores as LLRs: calibrate raw scores first)")
    if result["min_tdcf"] is None:
        lines.append("min t-DCF not computed: no ASV scores given (pass --asv-scores)")
    lines.append(f"{'attack':<8} {'spoof trials':>12} {'EER (%)':>10} {'min t-DCF':>10}")
    for attack, row in result["per_attack"].items():
        lines.append(f"{attack:<8} {row['spoof_trials']:>12d} {row['eer_percent']:>10.5f} "
                     f"{tdcf_text(row['min_tdcf']):>10}")
    return "\n".join(lines)
