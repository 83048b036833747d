"""The `darts-jax` commands on scores and released models: calibrate, fuse, import-pytorch.

Kept beside darts_jax/cli.py (which registers them with `add_inference_commands`) so each file stays
small; like cli.py, this is argument parsing only and every command calls library functions.
"""
from __future__ import annotations


def _cmd_calibrate(args) -> int:
    from darts_jax.spoofing.calibration import run_calibrate

    return run_calibrate(args.cm_scores, args.out, prior=args.prior, overwrite=args.overwrite, as_json=args.json)


def _cmd_import_pytorch(args) -> int:
    from darts_jax.spaces.pcdarts2d.config import ModelConfig
    from darts_jax.spoofing.pytorch_import import import_checkpoint

    model = ModelConfig(frontend=args.frontend, layers=args.layers, init_channels=args.init_channels)
    print(f"model written to {import_checkpoint(args.checkpoint, args.out, genotype=args.genotype, model=model)}")
    return 0


def _cmd_fuse(args) -> int:
    from darts_jax.spoofing.fusion import run_fuse

    return run_fuse(args.dev, args.eval, args.out, prior=args.prior, overwrite=args.overwrite, as_json=args.json)


def add_inference_commands(sub) -> None:
    """Adds calibrate, fuse and import-pytorch to the `darts-jax` subcommands `sub`."""
    p = sub.add_parser("calibrate", help="fit score -> LLR calibration (logistic regression) on dev scores")
    p.add_argument("--cm-scores", required=True, help="dev CM score file (utt_id attack_id key score)")
    p.add_argument("--out", required=True, help="calibration.json to write (for `export --calibration`)")
    _add_fit_flags(p)
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("fuse", help="logistic-regression fusion of several systems' score files")
    p.add_argument("--dev", nargs="+", required=True, help="dev score files, one per system")
    p.add_argument("--eval", nargs="+", required=True, help="eval score files of the same systems, same order")
    p.add_argument("--out", required=True, help="fused eval score file (LLRs)")
    _add_fit_flags(p)
    p.set_defaults(func=_cmd_fuse)

    p = sub.add_parser("import-pytorch", help="a model folder from the authors' PyTorch state dict (no PyTorch needed)")
    p.add_argument("checkpoint", help="a torch.save'd state dict of the evaluation network, e.g. 4-16.pth")
    p.add_argument("--genotype", required=True, help="genotype text, JSON file or known name (e.g. pcdarts-lfcc)")
    p.add_argument("--layers", type=int, required=True)
    p.add_argument("--init-channels", type=int, required=True)
    p.add_argument("--frontend", choices=("lfcc", "lfb", "spec"), required=True,
                   help="the one it was trained with (4-16.pth: lfcc); lfcc and lfb checkpoints hold the same tensors")
    p.add_argument("--out", required=True, help="model folder to create")
    p.set_defaults(func=_cmd_import_pytorch)


def _add_fit_flags(p) -> None:
    """Flags of the logistic-regression fits (calibrate, fuse)."""
    p.add_argument("--prior", type=float, default=0.5, help="bona fide prior of the fitting objective (default 0.5)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
