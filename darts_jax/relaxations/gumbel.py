"""Sampled architecture relaxations (GDAS, SNAS, STGS-BMNAS and its follow-up) and temperature schedules.

Every mode maps (key, logits_ExK, τ) to mixing weights of the same shape (spec related_systems §2.6).
Gumbel modes perturb θ = log_softmax(logits), which only shifts each row by a constant (as GDAS does),
with g ~ Gumbel(0, 1) drawn per edge; sg is stop_gradient:

- `softmax` (DARTS): softmax(logits / τ); deterministic, `key` unused.
- `sigmoid` (Fair DARTS, Chu et al., ECCV 2020): sigmoid(logits / τ), each op weighed on its own, so
  ops do not compete for one unit of weight; deterministic, `key` unused.
- `gumbel_soft` (SNAS, concrete): y = softmax((θ + g) / τ).
- `gumbel_st` (GDAS, straight-through): h + y - sg(y) with h = one_hot(argmax y): exactly one-hot
  forward, the soft sample's Jacobian backward.
- `gumbel_st_mc` (M draws): mean h_m + mean y_m - sg(mean y_m); forward the frequencies of M hard draws.
- `gumbel_rao` (Paulus et al., ICLR 2021): one hard draw D drives the forward; the backward averages
  the Jacobians of M soft samples drawn from the Gumbels conditioned on argmax = D, which lowers the
  variance of `gumbel_st`'s gradient without changing its mean.
- `stgs_repo_compat` (M): the public STGS-BMNAS code's sampler, for regression only. It is DEGENERATE:
  it iterates x <- (x + g_m) / λ M times on the raw logits, then takes softmax(x), so the logits enter
  scaled by λ^-M (1e-15 at the paper's λ = 10, M = 15): near-uniform random mixtures and no gradient.

One draw per call is shared by whatever the weights mix (the whole batch); with `batch_size` B every
example gets its own draw and the weights gain a leading axis (B, E, K).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

MODES = ("softmax", "sigmoid", "gumbel_soft", "gumbel_st", "gumbel_st_mc", "gumbel_rao", "stgs_repo_compat")
# Modes that draw nothing: the same weights at every call.
DETERMINISTIC_MODES = ("softmax", "sigmoid")
MULTI_SAMPLE_MODES = ("gumbel_st_mc", "gumbel_rao", "stgs_repo_compat")
# Modes whose forward weights have exact zeros: a supernet may skip the ops they switch off.
HARD_MODES = ("gumbel_st", "gumbel_st_mc", "gumbel_rao")
SCHEDULES = ("constant", "linear", "exponential")
# Named settings: (mode, M, schedule, τ start, τ end). GDAS anneals τ linearly 10 -> 0.1 over the epochs;
# STGS-BMNAS' best is a constant λ = 10 with M = 15 (spec §2.1, §2.9). SNAS anneals τ too, from values
# the spec does not give, so `snas` keeps τ = 1 unless the schedule is given.
PRESETS = {
    "darts": ("softmax", 1, "constant", 1.0, 1.0),
    "gdas": ("gumbel_st", 1, "linear", 10.0, 0.1),
    "snas": ("gumbel_soft", 1, "constant", 1.0, 1.0),
    "fair_darts": ("sigmoid", 1, "constant", 1.0, 1.0),
}
_MODE_DEFAULTS = {mode: (mode, 15 if mode in MULTI_SAMPLE_MODES else 1, "constant", *(
    (10.0, 10.0) if mode in MULTI_SAMPLE_MODES else (1.0, 1.0))) for mode in MODES}
_MODE_DEFAULTS.update(softmax=PRESETS["darts"], sigmoid=PRESETS["fair_darts"], gumbel_st=PRESETS["gdas"],
                      gumbel_soft=PRESETS["snas"])


@dataclasses.dataclass(frozen=True)
class SamplerConfig:
    """How a search draws its mixing weights, with τ's schedule over the epochs.

    `sampler` is a mode or a preset (darts, gdas, snas, fair_darts); the fields left None take its defaults
    (the `resolved` values), so `--sampler gdas` alone means GDAS' linear 10 -> 0.1; a mode takes its preset's
    (gumbel_st GDAS', gumbel_soft SNAS', sigmoid Fair DARTS'), the multi-sample modes M = 15 at a constant
    τ = 10. With `per_example_sample` every example draws its own architecture (no op can be skipped then).
    """
    sampler: str = "darts"
    sampler_samples: int | None = None
    per_example_sample: bool = False
    tau_schedule: str | None = None
    tau_start: float | None = None
    tau_end: float | None = None

    def __post_init__(self):
        if self.sampler not in _MODE_DEFAULTS and self.sampler not in PRESETS:
            raise ValueError(f"sampler (--sampler): {self.sampler!r} is not known; use a preset "
                             f"({', '.join(PRESETS)}) or a mode ({', '.join(MODES)})")
        mode, samples, schedule, tau_start, tau_end = self.resolved
        check_sampler(mode, samples, "sampler_samples (--sampler-samples)")
        if schedule not in SCHEDULES:
            raise ValueError(f"tau_schedule (--tau-schedule): {schedule!r} is not known; known schedules are "
                             f"{', '.join(SCHEDULES)}")
        if not (tau_start > 0 and tau_end > 0):
            raise ValueError(f"tau_start (--tau-start) {tau_start} and tau_end (--tau-end) {tau_end} must be > 0")

    @property
    def resolved(self) -> tuple[str, int, str, float, float]:
        """(mode, M, schedule, τ start, τ end) with the preset's or mode's defaults filled in; a constant
        schedule ends where it starts."""
        mode, samples, schedule, tau_start, tau_end = PRESETS.get(self.sampler) or _MODE_DEFAULTS[self.sampler]
        schedule = self.tau_schedule or schedule
        tau_start = tau_start if self.tau_start is None else self.tau_start
        if self.tau_end is not None:
            tau_end = self.tau_end
        elif schedule == "constant":
            tau_end = tau_start
        return mode, samples if self.sampler_samples is None else self.sampler_samples, schedule, tau_start, tau_end

    @property
    def mode(self) -> str:
        return self.resolved[0]

    @property
    def num_samples(self) -> int:
        return self.resolved[1]

    @property
    def skips_unselected_ops(self) -> bool:
        """The forward weights are exact zeros off the sampled ops and shared by the batch, so a supernet
        may leave out every op no edge selected."""
        return self.mode in HARD_MODES and not self.per_example_sample

    def tau(self, epoch: int, epochs: int) -> float:
        """τ of `epoch` of 0 .. epochs - 1, a host float (a step argument, so it never recompiles)."""
        _, _, schedule, tau_start, tau_end = self.resolved
        return float(temperature_schedule(epoch, epochs, schedule, tau_start, tau_end))

    def describe(self) -> str:
        mode, samples, schedule, tau_start, tau_end = self.resolved
        tau = f"τ {tau_start:g}" if schedule == "constant" else f"τ {schedule} {tau_start:g} -> {tau_end:g}"
        draw = "per example" if self.per_example_sample else "one draw per forward pass"
        return f"{self.sampler}: {mode}, M = {samples}, {tau}, {draw}"


def check_sampler(mode: str, num_samples: int, field: str = "sampler") -> None:
    """Raises a ValueError naming `field` for an unknown mode or a sample count the mode cannot use."""
    if mode not in MODES:
        raise ValueError(f"{field}: {mode!r} is not a sampler mode; known modes are {', '.join(MODES)}")
    if num_samples < 1:
        raise ValueError(f"{field}: num_samples (M) is {num_samples}; it must be at least 1")
    if num_samples != 1 and mode not in MULTI_SAMPLE_MODES:
        raise ValueError(f"{field}: mode {mode!r} draws one sample, but num_samples (M) is {num_samples}; "
                         f"use M = 1, or one of {', '.join(MULTI_SAMPLE_MODES)}")


def sample_arch_weights(key, logits_ExK, tau, mode: str, num_samples: int = 1, batch_size: int | None = None):
    """Mixing weights (E, K) from logits (E, K) under `mode` at temperature `tau` (a float or traced
    scalar); `num_samples` is M of the multi-sample modes. With `batch_size` B, one independent draw
    per example: (B, E, K)."""
    check_sampler(mode, num_samples)
    if batch_size is not None:
        keys = jax.random.split(key, batch_size)
        return jax.vmap(lambda k: _sample(k, logits_ExK, tau, mode, num_samples))(keys)
    return _sample(key, logits_ExK, tau, mode, num_samples)


def _sample(key, logits, tau, mode, num_samples):
    if mode == "softmax":
        return jax.nn.softmax(logits / tau, axis=-1)
    if mode == "sigmoid":
        return jax.nn.sigmoid(logits / tau)
    if mode == "stgs_repo_compat":
        return _stgs_repo_compat(key, logits, tau, num_samples)
    theta = jax.nn.log_softmax(logits, axis=-1)
    if mode == "gumbel_rao":
        return _gumbel_rao(key, theta, tau, num_samples)
    gumbels = jax.random.gumbel(key, (num_samples, *logits.shape), logits.dtype)
    soft = jax.nn.softmax((theta + gumbels) / tau, axis=-1)
    if mode == "gumbel_soft":
        return soft[0]
    hard = jax.nn.one_hot(jnp.argmax(soft, axis=-1), logits.shape[-1], dtype=logits.dtype)
    return _straight_through(hard.mean(0), soft.mean(0))


def _straight_through(forward, backward):
    """`forward`'s value with `backward`'s gradient; backward - sg(backward) is exactly 0 in value."""
    return forward + (backward - jax.lax.stop_gradient(backward))


def _gumbel_rao(key, theta, tau, num_samples):
    draw_key, conditional_key = jax.random.split(key)
    chosen = jnp.argmax(theta + jax.random.gumbel(draw_key, theta.shape, theta.dtype), axis=-1)
    hard = jax.nn.one_hot(chosen, theta.shape[-1], dtype=theta.dtype)
    # The noise is the conditional draw less θ, held fixed: the gradient is then the soft sample's Jacobian
    # at the conditional draws, E[gumbel_st's gradient | D]. Differentiating through the sampler itself
    # would give another (biased) mean.
    noise = jax.lax.stop_gradient(conditional_gumbels(conditional_key, theta, chosen, num_samples) - theta)
    return _straight_through(hard, jax.nn.softmax((theta + noise) / tau, axis=-1).mean(0))


def conditional_gumbels(key, theta_ExK, chosen_E, num_samples: int):
    """`num_samples` draws (M, E, K) of θ + g, g ~ Gumbel(0, 1), conditioned on argmax = `chosen_E`
    (Paulus et al., Appendix): the maximum z_D is logsumexp(θ) + g_D, and every other coordinate is a
    Gumbel at θ_i truncated below z_D."""
    gumbels = jax.random.gumbel(key, (num_samples, *theta_ExK.shape), theta_ExK.dtype)
    top = jax.nn.logsumexp(theta_ExK, axis=-1, keepdims=True) + gumbels
    z_top = jnp.take_along_axis(top, jnp.broadcast_to(chosen_E[None, :, None], (num_samples, len(chosen_E), 1)),
                                axis=-1)
    truncated = -jnp.logaddexp(-z_top, -(theta_ExK + gumbels))
    return jnp.where(jax.nn.one_hot(chosen_E, theta_ExK.shape[-1], dtype=bool), z_top, truncated)


def _stgs_repo_compat(key, logits, lam, num_samples):
    """The public code's loop as written: uniform noise with its 1e-20 guards, raw logits, no annealing."""
    for uniform_key in jax.random.split(key, num_samples):
        uniform = jax.random.uniform(uniform_key, logits.shape, logits.dtype)
        noise = -jnp.log(-jnp.log(uniform + 1e-20) + 1e-20)
        logits = (logits + noise) / lam
    return jax.nn.softmax(logits, axis=-1)


def temperature_schedule(step, total_steps: int, kind: str = "constant", tau_start: float = 10.0,
                         tau_end: float = 0.1):
    """τ at `step` of 0 .. total_steps - 1 (an epoch in GDAS, whose τ falls linearly 10 -> 0.1 over the
    epochs): `constant` tau_start; `linear` from tau_start to tau_end; `exponential` geometric between
    them. Steps past the end keep tau_end. Works on Python numbers and traced scalars alike."""
    if kind not in SCHEDULES:
        raise ValueError(f"temperature schedule: {kind!r} is not known; known schedules are {', '.join(SCHEDULES)}")
    if not (tau_start > 0 and tau_end > 0):
        raise ValueError(f"temperature schedule: tau_start {tau_start} and tau_end {tau_end} must be > 0")
    if total_steps < 1:
        raise ValueError(f"temperature schedule: total_steps is {total_steps}; it must be at least 1")
    # Host steps (the search's epochs) are computed in float64; traced ones in the program's float.
    xp = np if isinstance(step, (int, float, np.integer, np.floating)) else jnp
    if kind == "constant":
        return xp.asarray(tau_start, xp.float64 if xp is np else jnp.float32)
    progress = xp.clip(step / max(total_steps - 1, 1), 0.0, 1.0)
    if kind == "linear":
        return tau_start - (tau_start - tau_end) * progress
    return tau_start * (tau_end / tau_start) ** progress
