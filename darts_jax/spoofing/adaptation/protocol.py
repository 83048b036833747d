"""The adaptation protocol of one setting: every method from the same teacher, scored on source and target.

A `Setting` holds a teacher, the target data it adapts on, and two test sets the adaptation never
sees: the source domain's (forgetting) and the target domain's. Accuracy is the mean of the per-class
accuracies (as FReTAL reports it), EER the official one; the score of a trial is
logit(genuine) − logit(other). Forgetting = source accuracy of the teacher − that of the adapted model.
The claim is judged only once the preconditions hold (spec related_systems §3.8).
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from darts_jax.engine import parallel
from darts_jax.spoofing.classification import balanced_accuracy
from darts_jax.spoofing.metrics import compute_eer
from darts_jax.tasks.adapt.config import ZERO_SHOT, config_for
from darts_jax.tasks.adapt.step import Backbone, compile_eval_forward, predict
from darts_jax.tasks.adapt.task import adapt

# Thresholds of the issue, in accuracy points.
MAX_ZERO_SHOT_TARGET = 70.0
MIN_FT_FORGETTING = 10.0
MIN_FORGETTING_GAIN = 5.0
MIN_PAIRED_WINS = 4  # of 5 seeds (all but one seed in general)
MAX_TARGET_LOSS = 3.0


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str
    backbone: Backbone
    teacher: dict  # variables
    target_train: dict  # {'inputs', 'label'}: the only data adaptation sees
    source_test: dict
    target_test: dict
    genuine_class: int  # the real / bona fide class index
    box_axes: int  # CutMix box axes of the inputs (2 images, 1 waveforms)
    teacher_source: str = ""  # where the teacher came from


def score_split(forward, variables, split: dict, genuine_class: int, batch_size: int, devices) -> dict:
    """Accuracy and EER (percent) of a model on a test split."""
    logits = predict(forward, variables, np.asarray(split["inputs"]), batch_size, devices)["logits"]
    scores = logits[:, genuine_class] - logits[:, 1 - genuine_class]
    genuine = np.asarray(split["label"]) == genuine_class
    return {"accuracy": 100.0 * balanced_accuracy(scores[genuine], scores[~genuine]),
            "eer": 100.0 * compute_eer(scores[genuine], scores[~genuine])[0]}


def score_model(setting: Setting, forward, variables, batch_size: int, devices) -> dict:
    source = score_split(forward, variables, setting.source_test, setting.genuine_class, batch_size, devices)
    target = score_split(forward, variables, setting.target_test, setting.genuine_class, batch_size, devices)
    return {"source_acc": source["accuracy"], "source_eer": source["eer"], "target_acc": target["accuracy"],
            "target_eer": target["eer"], "mean_acc": (source["accuracy"] + target["accuracy"]) / 2}


def run_methods(setting: Setting, methods, seed: int, workdir, *, epochs: int, batch_size: int, lr: float = 0.05,
                quiet: bool = True) -> list[dict]:
    """One row per method (zero-shot first) for one seed; each adaptation run in WORKDIR/<method>-seed<seed>."""
    devices = parallel.local_devices(1)
    forward = compile_eval_forward(setting.backbone, devices)
    teacher_scores = score_model(setting, forward, setting.teacher, batch_size, devices)
    rows = [{"setting": setting.name, "method": ZERO_SHOT, "seed": seed, **teacher_scores, "forgetting": 0.0,
             "wall_s": 0.0}]
    for method in methods:
        config = config_for(method, batch_size=batch_size, lr=lr, box_axes=setting.box_axes,
                            teacher=setting.teacher_source, epochs=epochs, seed=seed)
        start = time.perf_counter()
        result = adapt(setting.backbone, setting.teacher, setting.target_train, None, config,
                       Path(workdir) / f"{method}-seed{seed}", devices=devices, restart=True, quiet=quiet)
        wall = time.perf_counter() - start
        scores = score_model(setting, forward, result.variables, batch_size, devices)
        rows.append({"setting": setting.name, "method": method, "seed": seed, **scores,
                     "forgetting": teacher_scores["source_acc"] - scores["source_acc"], "wall_s": wall})
    return rows


def check_preconditions(rows: list[dict]) -> dict:
    """Zero-shot target accuracy <= 70 and FT forgetting >= 10 points (means over the seeds)."""
    zero_shot = float(np.mean([r["target_acc"] for r in rows if r["method"] == ZERO_SHOT]))
    ft = [r["forgetting"] for r in rows if r["method"] == "ft"]
    ft_forgetting = float(np.mean(ft)) if ft else float("nan")
    return {"zero_shot_target_acc": zero_shot, "ft_forgetting": ft_forgetting,
            "zero_shot_ok": zero_shot <= MAX_ZERO_SHOT_TARGET, "ft_forgetting_ok": ft_forgetting >= MIN_FT_FORGETTING,
            "hold": zero_shot <= MAX_ZERO_SHOT_TARGET and ft_forgetting >= MIN_FT_FORGETTING}


def paired(rows: list[dict], method: str, baseline: str, field: str) -> np.ndarray:
    """baseline − method of `field`, per seed (in seed order), over the seeds both have."""
    by = {(r["method"], r["seed"]): r[field] for r in rows}
    seeds = sorted({r["seed"] for r in rows if (method, r["seed"]) in by and (baseline, r["seed"]) in by})
    return np.array([by[(baseline, s)] - by[(method, s)] for s in seeds])


def judge_claim(rows: list[dict], method: str = "fretal") -> dict:
    """The issue's claim of `method` against FT, and (reported, not judged) against KD alone."""
    gain = paired(rows, method, "ft", "forgetting")  # F(FT) − F(method): positive is less forgetting
    target_gap = -paired(rows, method, "ft", "target_acc")  # acc_B(method) − acc_B(FT)
    wins_needed = MIN_PAIRED_WINS if len(gain) == 5 else len(gain) - 1
    verdict = {"seeds": len(gain), "forgetting_gain_mean": float(gain.mean()),
               "forgetting_gain_per_seed": gain.tolist(),
               "paired_wins": int((gain > 0).sum()), "wins_needed": wins_needed,
               "target_gap_mean": float(target_gap.mean()),
               "holds": bool(gain.mean() >= MIN_FORGETTING_GAIN and (gain > 0).sum() >= wins_needed
                             and target_gap.mean() >= -MAX_TARGET_LOSS)}
    if any(r["method"] == "kd" for r in rows):
        versus_kd = -paired(rows, method, "kd", "mean_acc")
        verdict["mean_acc_minus_kd_per_seed"] = versus_kd.tolist()
        verdict["mean_acc_minus_kd_mean"] = float(versus_kd.mean())
    return verdict


METHODS_COMPARED = ("ft", "kd", "tgd", "rel", "fretal", "fretal-vector")


def run_protocol(make_setting, seeds, out, *, methods=METHODS_COMPARED, epochs: int = 20, batch_size: int = 32,
                 lr: float = 0.05, record: dict | None = None, say=print) -> dict:
    """Every method on `make_setting(seed, workdir)` for each seed; the report in OUT (report.md, rows.jsonl,
    adaptation.png). The claim is judged only when the preconditions hold."""
    from darts_jax.spoofing.adaptation.report import write_report

    out = Path(out)
    rows = []
    for seed in seeds:
        setting = make_setting(seed, out / "runs")
        seed_rows = run_methods(setting, methods, seed, out / "runs", epochs=epochs, batch_size=batch_size, lr=lr)
        for r in seed_rows:
            say(f"{r['setting']} seed {seed} {r['method']:>13}: source acc {r['source_acc']:5.1f}, target acc "
                f"{r['target_acc']:5.1f}, target EER {r['target_eer']:5.1f}, forgetting {r['forgetting']:5.1f}, "
                f"{r['wall_s']:.1f} s")
        rows += seed_rows
    preconditions = check_preconditions(rows)
    judged = preconditions["hold"] and {"ft", "fretal"} <= set(methods)
    verdict = judge_claim(rows) if judged else None
    settings = {"seeds": list(seeds), "epochs": epochs, "batch_size": batch_size, "lr": lr, **(record or {})}
    report = write_report(rows, preconditions, verdict, settings, out)
    say(f"report: {report}")
    return {"rows": rows, "preconditions": preconditions, "verdict": verdict}
