"""The `darts-jax` commands of source-free adaptation (FReTAL and its baselines): adapt-teacher, adapt.

Registered by darts_jax/cli.py with `add_adapt_commands`; argument parsing only, every command calls
library functions (darts_jax.spoofing.adaptation.commands).
"""
from __future__ import annotations

METHOD_CHOICES = ("zero-shot", "ft", "kd", "tgd", "rel", "fretal", "fretal-vector")


def _cmd_adapt_teacher(args) -> int:
    from darts_jax.spoofing.adaptation.commands import run_adapt_teacher

    return run_adapt_teacher(args.data, args.workdir, epochs=args.epochs, seed=args.seed, restart=args.restart)


def _cmd_adapt(args) -> int:
    from darts_jax.spoofing.adaptation.commands import run_adapt

    attacks = tuple(a.strip() for a in args.target_attacks.split(",")) if args.target_attacks else None
    return run_adapt(args.teacher, args.data, args.workdir, method=args.method, epochs=args.epochs, seed=args.seed,
                     lr=args.lr, batch_size=args.batch_size, target_per_class=args.target_per_class,
                     target_attacks=attacks, restart=args.restart)


def add_adapt_commands(sub) -> None:
    """Adds adapt-teacher and adapt to the `darts-jax` subcommands `sub`."""
    p = sub.add_parser("adapt-teacher", help="image setting: train the face CNN teacher on real vs manipulation A")
    p.add_argument("--data", required=True, help="a folder made by make-synthetic-faces --kind manipulation")
    p.add_argument("--workdir", required=True, help="the teacher run (checkpoints, logs)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restart", action="store_true", help="move a previous run in --workdir aside and start over")
    p.set_defaults(func=_cmd_adapt_teacher)

    p = sub.add_parser("adapt", help="source-free adaptation of a teacher to a new attack (FReTAL, FT, KD, T-GD, ...)")
    p.add_argument("--teacher", required=True,
                   help="images: an adapt-teacher workdir; audio: a `darts-jax train` workdir")
    p.add_argument("--data", required=True, help="images: a manipulation corpus folder; audio: the LA folder")
    p.add_argument("--workdir", required=True, help="the adaptation run; its scores go to WORKDIR/scores.json")
    p.add_argument("--method", choices=METHOD_CHOICES, default="fretal")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (momentum 0.1, as the reference code)")
    p.add_argument("--batch-size", type=int, help="default 32 (images), 16 (audio)")
    p.add_argument("--seed", type=int, default=0, help="the target subset, the batch order and CutMix")
    p.add_argument("--target-per-class", type=int, help="images: B and real views to adapt on (default 100)")
    p.add_argument("--target-attacks", help="audio: the held-out eval attacks of the target, e.g. A07,A08,A09")
    p.add_argument("--restart", action="store_true", help="move a previous run in --workdir aside and start over")
    p.set_defaults(func=_cmd_adapt)
