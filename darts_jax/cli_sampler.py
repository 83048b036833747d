"""Command-line flags of the architecture relaxations for `search` and `benchmark`: the samplers
(darts_jax.relaxations.gumbel) and the collapse remedies (darts_jax.relaxations.remedies, RobustDARTS'
early stop in darts_jax.tasks.diagnostics).

The search flags are named as the fields of `SamplerConfig` and `SearchConfig`, so the run config takes
them like any other flag; left out, they keep the defaults (or, resuming, the run's saved settings).
"""
from __future__ import annotations

from darts_jax.relaxations.gumbel import MODES, PRESETS, SCHEDULES

SAMPLER_CHOICES = (*PRESETS, *MODES)


def add_sampler_flags(p) -> None:
    p.add_argument("--sampler", choices=SAMPLER_CHOICES,
                   help="how op weights are drawn: darts (softmax, default), gdas (hard straight-through Gumbel, "
                        "τ 10 -> 0.1, only sampled ops run), snas (soft Gumbel), fair_darts (sigmoid, "
                        "genotype from σ(α); add --zero-one 10), or a sampler mode; "
                        "gumbel_st_mc, gumbel_rao, stgs_repo_compat default to M = 15, τ = 10")
    p.add_argument("--sampler-samples", type=int, help="M, the draws of gumbel_st_mc, gumbel_rao, stgs_repo_compat")
    p.add_argument("--per-example-sample", action="store_true", default=None,
                   help="one architecture draw per example instead of per forward pass (computes every op)")
    p.add_argument("--tau-schedule", choices=SCHEDULES, help="τ over the epochs (default: the sampler's)")
    p.add_argument("--tau-start", type=float, help="τ of the first epoch")
    p.add_argument("--tau-end", type=float, help="τ of the last epoch (linear and exponential schedules)")


def add_remedy_flags(p) -> None:
    """Collapse remedies, each off by default (the authors' setting)."""
    p.add_argument("--beta-decay", type=float, help="β-DARTS regulariser weight, ramped after warm-up (0, off)")
    p.add_argument("--max-skips", type=int, help="P-DARTS cap on the normal cell's skips at derivation")
    p.add_argument("--zero-one", type=float, help="Fair DARTS' zero-one loss weight (its authors' 10; 0, off)")
    p.add_argument("--aux-skip", type=float,
                   help="DARTS-' auxiliary skip weight at the first epoch, falling linearly to 0 (its authors' 1)")
    p.add_argument("--early-stop-ratio", type=float,
                   help="RobustDARTS early stop: end the search when the mean Hessian eigenvalue of the last "
                        "--early-stop-window epochs exceeds that of the window before by 1/ratio, and keep the "
                        "genotype of the earlier window's end (its authors' 0.75; 0, off)")
    p.add_argument("--early-stop-window", type=int, help="epochs per window of the early stop (default 5)")


def add_benchmark_sampler_flag(p) -> None:
    p.add_argument("--sampler", dest="sampler_list", default="darts",
                   help=f"comma-separated samplers to time the search step under, e.g. darts,gdas "
                        f"(known: {', '.join(SAMPLER_CHOICES)})")
