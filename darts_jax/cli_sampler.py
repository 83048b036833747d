"""Command-line flags of the architecture samplers (darts_jax.relaxations.gumbel) for `search` and `benchmark`.

The search flags are named as the fields of `SamplerConfig`, so the run config takes them like any other
flag; left out, they keep the preset's defaults (or, resuming, the run's saved settings).
"""
from __future__ import annotations

from darts_jax.relaxations.gumbel import MODES, PRESETS, SCHEDULES

SAMPLER_CHOICES = (*PRESETS, *MODES)


def add_sampler_flags(p) -> None:
    p.add_argument("--sampler", choices=SAMPLER_CHOICES,
                   help="how op weights are drawn: darts (softmax, default), gdas (hard straight-through Gumbel, "
                        "τ 10 -> 0.1, only sampled ops run), snas (soft Gumbel), or a sampler mode; "
                        "gumbel_st_mc, gumbel_rao, stgs_repo_compat default to M = 15, τ = 10")
    p.add_argument("--sampler-samples", type=int, help="M, the draws of gumbel_st_mc, gumbel_rao, stgs_repo_compat")
    p.add_argument("--per-example-sample", action="store_true", default=None,
                   help="one architecture draw per example instead of per forward pass (computes every op)")
    p.add_argument("--tau-schedule", choices=SCHEDULES, help="τ over the epochs (default: the sampler's)")
    p.add_argument("--tau-start", type=float, help="τ of the first epoch")
    p.add_argument("--tau-end", type=float, help="τ of the last epoch (linear and exponential schedules)")


def add_benchmark_sampler_flag(p) -> None:
    p.add_argument("--sampler", dest="sampler_list", default="darts",
                   help=f"comma-separated samplers to time the search step under, e.g. darts,gdas "
                        f"(known: {', '.join(SAMPLER_CHOICES)})")
