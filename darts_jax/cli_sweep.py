"""`darts-jax sweep`: the demo's pipeline for several seeds, with the spread of the results."""
from __future__ import annotations


def _cmd_sweep(args) -> int:
    from darts_jax.demo import DemoConfig
    from darts_jax.spoofing.sweep import run_sweep

    if args.seeds < 2:
        raise ValueError(f"--seeds: a spread needs at least 2 seeds, got {args.seeds}")
    if args.first_seed < 0:
        raise ValueError(f"--first-seed: seeds are non-negative, got {args.first_seed}")
    demo = DemoConfig()
    summary = run_sweep(demo.search, demo.train, tuple(range(args.first_seed, args.first_seed + args.seeds)),
                        args.data, args.workdir, vmapped=not args.sequential, workers=args.workers)
    low, high = summary["eer_percent_ci95"]
    print(f"eval EER {summary['eer_percent_mean']:.2f} ± {summary['eer_percent_std']:.2f} % over {args.seeds} "
          f"seeds (95 % bootstrap interval {low:.2f} to {high:.2f} %); table: {args.workdir}/sweep.md")
    return 0


def add_sweep_command(sub, add_compile_cache_flag) -> None:
    p = sub.add_parser("sweep", help="search, train and score for N seeds at the demo's size; one table of the spread")
    p.add_argument("--data", required=True, help="corpus in the ASVspoof 2019 LA layout (e.g. `make-synthetic`)")
    p.add_argument("--workdir", required=True, help="one folder per seed, sweep.json and sweep.md; resumed")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--sequential", action="store_true",
                   help="search the seeds one after another instead of stacked in one program (vmap)")
    p.add_argument("--workers", type=int, default=4, help="audio decoding threads")
    add_compile_cache_flag(p)
    p.set_defaults(func=_cmd_sweep)
