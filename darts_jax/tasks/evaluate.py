"""The evaluation task: scores of a derived network (or of the supernet with its α/β) on every utterance.

`Scores` is the one per-trial record of darts_jax: the loops produce it, and score files
(darts_jax.spoofing.scores) are written from and read into it.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from darts_jax.engine import parallel
from darts_jax.engine.space import SearchSpace


@dataclasses.dataclass(frozen=True)
class Scores:
    """Per-trial outputs in loader (or file) order; label 1 is the positive (bona fide) class."""
    utt_ids: np.ndarray
    attacks: np.ndarray  # the condition of each trial (spoofing: attack id, '-' for bona fide)
    labels: np.ndarray
    scores: np.ndarray  # the positive class's logit (the authors' score)
    score_diffs: np.ndarray | None = None  # logit1 - logit0, monotonic in the posterior; None when read from a file


def batch_arrays(batch) -> dict:
    """A loader batch as the arrays steps read: inputs (B, ...), label (B,), valid (B,)."""
    return {"inputs": batch.wave_BxS, "label": batch.label_B, "valid": batch.valid_B}


def eval_step(params, batch_stats, arch, batch, *, space: SearchSpace, model, genotype, relaxation=None):
    """Scores in eval mode (running BN statistics, no masking, no drop path).

    The supernet (with `arch`) is scored when `genotype` is None: with softmax(α), or with a deterministic
    `relaxation` (a SamplerConfig that draws nothing, Fair DARTS' sigmoid).
    """
    variables = {"params": params, "batch_stats": batch_stats}
    if genotype is None:
        options = {} if relaxation is None else {"sampler": relaxation}
        logits = space.supernet(model).apply(variables, batch["inputs"], arch, train=False, **options)
    else:
        logits, _ = space.network(model, genotype).apply(variables, batch["inputs"], train=False)
    return {"score": logits[:, 1], "score_diff": logits[:, 1] - logits[:, 0], "prediction": logits.argmax(-1)}


def compile_eval_step(space: SearchSpace, model, genotype, devices, relaxation=None) -> Callable:
    """(params, batch_stats, arch, batch) -> outputs over `devices`; evaluation needs no collectives."""
    step = parallel.bind(eval_step, space=space, model=model, genotype=genotype, relaxation=relaxation)
    return parallel.pmap(step, devices, (0, 0, 0, 0), donate_state=False)


def score(eval_step_fn, variables: dict, arch, loader, devices) -> Scores:
    """Scores every utterance of `loader.one_pass()` (padding rows of the last batch dropped)."""
    params, batch_stats, arch = parallel.replicate((variables["params"], variables["batch_stats"], arch), devices)
    utt_ids, attacks, labels, scores, diffs = [], [], [], [], []
    for batch in loader.one_pass():
        arrays = parallel.shard_batch(batch_arrays(batch), len(devices))
        out = jax.device_get(eval_step_fn(params, batch_stats, arch, arrays))
        valid = np.asarray(batch.valid_B)
        utt_ids += [u for u, v in zip(batch.utt_ids, valid) if v]
        attacks += [a for a, v in zip(batch.attacks, valid) if v]
        labels.append(np.asarray(batch.label_B)[valid])
        scores.append(out["score"].reshape(-1)[valid])
        diffs.append(out["score_diff"].reshape(-1)[valid])
    return Scores(np.asarray(utt_ids), np.asarray(attacks), np.concatenate(labels), np.concatenate(scores),
                  np.concatenate(diffs))


def evaluate(space: SearchSpace, model, genotype, variables: dict, loader, *, devices=None) -> Scores:
    """Scores of a trained derived network on every utterance of `loader`."""
    devices = devices or parallel.local_devices()
    return score(compile_eval_step(space, model, genotype, devices), variables, None, loader, devices)
