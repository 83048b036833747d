"""Fusion genotypes: BM-NAS' "v3" derivation (spec §2.5), JSON and text forms.

Text form, one fusion step per `|`: `v2+a3: ConcatFC(x,y), Sum(x,s0) | v1+a4: ...` - the step fuses
taps v2 (x) and a3 (y); its inner step t applies an op to two of x, y, s0, ..., s(t-1).
"""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np

from darts_jax.engine.config import read_json
from darts_jax.relaxations import softmax_np
from darts_jax.spaces.fusion.config import FUSION_OPS, FusionConfig
from darts_jax.spaces.fusion.supernet import SKIP


@dataclasses.dataclass(frozen=True)
class InnerStep:
    op: str
    inputs: tuple[int, int]  # indices into the node's states x = 0, y = 1, s0 = 2, ...


@dataclasses.dataclass(frozen=True)
class FusionStep:
    taps: tuple[str, str]  # the two taps fused (x, y)
    inner: tuple[InnerStep, ...]


@dataclasses.dataclass(frozen=True)
class FusionGenotype:
    steps: tuple[FusionStep, ...]

    @property
    def taps_used(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for step in self.steps for t in step.taps))


def _state_name(index: int) -> str:
    return ("x", "y")[index] if index < 2 else f"s{index - 2}"


def derive_genotype(arch, config: FusionConfig) -> FusionGenotype:
    """The v3 rule: step i fuses the pair of taps (j < k, not both used by earlier steps) with the largest
    product of their skip weights in softmax(α) (previous steps' rows are never chosen); inner step t keeps
    its two predecessors of largest softmax(β) skip weight, and the op of largest softmax(γ_t)."""
    alpha = softmax_np(np.asarray(arch["alpha"], np.float64))
    beta = softmax_np(np.asarray(arch["beta"], np.float64))
    gamma = softmax_np(np.asarray(arch["gamma"], np.float64))
    num_taps, used, offset, steps = len(config.taps), set(), 0, []
    for i in range(config.steps):
        skip = alpha[offset:offset + num_taps, SKIP]
        pairs = [(skip[j] * skip[k], j, k) for j in range(num_taps) for k in range(j + 1, num_taps)
                 if not {j, k} <= used]
        # Ties go to the first pair in (j, k) order: max keeps the first of equal scores.
        _, j, k = max(pairs, key=lambda p: p[0])
        used |= {j, k}
        offset += num_taps + i
        inner, edge = [], 0
        for t in range(config.node_steps):
            count = 2 + t
            order = np.argsort(-beta[i, edge:edge + count, SKIP], kind="stable")
            inner.append(InnerStep(FUSION_OPS[int(np.argmax(gamma[i, t]))], tuple(sorted(int(p) for p in order[:2]))))
            edge += count
        steps.append(FusionStep((config.taps[j], config.taps[k]), tuple(inner)))
    return FusionGenotype(tuple(steps))


def genotype_text(genotype: FusionGenotype) -> str:
    return " | ".join(f"{'+'.join(step.taps)}: " + ", ".join(
        f"{s.op}({_state_name(s.inputs[0])},{_state_name(s.inputs[1])})" for s in step.inner)
        for step in genotype.steps)


def genotype_to_dict(genotype: FusionGenotype) -> dict:
    return {"steps": [{"taps": list(step.taps), "inner": [{"op": s.op, "inputs": list(s.inputs)} for s in step.inner]}
                      for step in genotype.steps]}


def genotype_from_dict(data, config: FusionConfig, where: str = "genotype") -> FusionGenotype:
    """A genotype from its JSON form, checked against `config` (its taps, step counts and the ops)."""
    try:
        steps = tuple(FusionStep(tuple(step["taps"]), tuple(InnerStep(s["op"], tuple(int(i) for i in s["inputs"]))
                                                              for s in step["inner"])) for step in data["steps"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{where}: not a fusion genotype ({type(err).__name__}: {err}); expected "
                         f'{{"steps": [{{"taps": [a, b], "inner": [{{"op": ..., "inputs": [i, j]}}]}}]}}') from None
    genotype = FusionGenotype(steps)
    _check(genotype, config, where)
    return genotype


def _check(genotype: FusionGenotype, config: FusionConfig, where: str) -> None:
    problems = []
    if len(genotype.steps) != config.steps:
        problems.append(f"{len(genotype.steps)} steps, the model has steps = {config.steps}")
    for i, step in enumerate(genotype.steps):
        unknown = [t for t in step.taps if t not in config.taps]
        if len(step.taps) != 2 or unknown or step.taps[0] == step.taps[1]:
            problems.append(f"step {i}: taps {list(step.taps)} must be 2 distinct of {list(config.taps)}")
        if len(step.inner) != config.node_steps:
            problems.append(f"step {i}: {len(step.inner)} inner steps, the model has node_steps = {config.node_steps}")
        for t, inner in enumerate(step.inner):
            if inner.op not in FUSION_OPS:
                problems.append(f"step {i} inner {t}: op {inner.op!r} is not one of {', '.join(FUSION_OPS)}")
            if len(inner.inputs) != 2 or not all(0 <= p < 2 + t for p in inner.inputs):
                problems.append(f"step {i} inner {t}: inputs {list(inner.inputs)} must be 2 of 0 .. {1 + t}")
    if problems:
        raise ValueError(f"{where}: " + "; ".join(problems))


_STEP = re.compile(r"^\s*(\w+)\+(\w+)\s*:\s*(.+?)\s*$")
_INNER = re.compile(r"(\w+)\(\s*(\w+)\s*,\s*(\w+)\s*\)")


def parse_genotype_text(text: str, config: FusionConfig) -> FusionGenotype:
    steps = []
    for part in text.split("|"):
        match = _STEP.match(part)
        if not match:
            raise ValueError(f"genotype text: {part.strip()!r} is not 'tap+tap: Op(x,y), ...'")
        inner = []
        for t, (op, a, b) in enumerate(_INNER.findall(match.group(3))):
            names = {_state_name(n): n for n in range(2 + t)}
            if a not in names or b not in names:
                raise ValueError(f"genotype text: {op}({a},{b}) in {part.strip()!r}: inputs must be among "
                                 f"{', '.join(names)}")
            inner.append(InnerStep(op, (names[a], names[b])))
        steps.append(FusionStep((match.group(1), match.group(2)), tuple(inner)))
    genotype = FusionGenotype(tuple(steps))
    _check(genotype, config, "genotype text")
    return genotype


def load_genotype(spec: str, config: FusionConfig) -> FusionGenotype:
    """A genotype from a JSON file (a search's genotype.json) or from its text form."""
    path = Path(spec)
    if spec.endswith(".json") or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"--genotype {spec}: no such file")
        return genotype_from_dict(read_json(path), config, str(path))
    return parse_genotype_text(spec, config)


def random_genotype(rng: np.random.Generator, config: FusionConfig) -> FusionGenotype:
    """A uniformly drawn genotype of the same discrete space (pairs obeying the v3 rule), for baselines."""
    used, steps = set(), []
    for _ in range(config.steps):
        pairs = [(j, k) for j in range(len(config.taps)) for k in range(j + 1, len(config.taps)) if not {j, k} <= used]
        j, k = pairs[rng.integers(len(pairs))]
        used |= {j, k}
        inner = tuple(InnerStep(FUSION_OPS[rng.integers(len(FUSION_OPS))],
                                tuple(sorted(int(p) for p in rng.choice(2 + t, size=2, replace=False))))
                      for t in range(config.node_steps))
        steps.append(FusionStep((config.taps[j], config.taps[k]), inner))
    return FusionGenotype(tuple(steps))
