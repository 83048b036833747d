"""The `darts-jax` commands of the face systems: make-synthetic-faces, depth-pretrain, depth-train, depth-evaluate.

Registered by darts_jax/cli.py with `add_face_commands`; argument parsing only, every command calls library
functions. A run's flags left out take its saved settings when it resumes (the driver refuses changes).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path


def _cmd_make_synthetic_faces(args) -> int:
    if args.kind == "manipulation":
        from darts_jax.data.synthfaces.manipulation import make_manipulation_corpus

        make_manipulation_corpus(args.out, seed=args.seed)
        return 0
    from darts_jax.data.synthfaces.presentation import PresentationCorpusConfig, make_presentation_corpus

    sizes = {k: v for k, v in (("train_per_class", args.train_per_class), ("eval_per_class", args.eval_per_class))
             if v is not None}
    make_presentation_corpus(args.out, PresentationCorpusConfig(seed=args.seed, **sizes))
    return 0


def _run_config(cls, workdir: str, restart: bool, flags: dict):
    """The saved config of a resumable run (or the defaults) with the given flags replaced."""
    from darts_jax.engine import config as config_lib

    saved = Path(workdir) / "config.json"
    checkpoints = Path(workdir) / "checkpoints"
    resumable = not restart and saved.is_file() and checkpoints.is_dir() and any(
        p.name.isdigit() for p in checkpoints.iterdir())
    base = config_lib.load_json(cls, saved) if resumable else cls()
    return config_lib.replace_fields(base, {k: v for k, v in flags.items() if v is not None}, strict=True)


def _model_flags(args) -> dict:
    return {"width": args.width, "levels": args.levels}


def _cmd_depth_pretrain(args) -> int:
    from darts_jax.data.synthfaces.presentation import load_presentation_corpus
    from darts_jax.spoofing.pad_report import depth_separation
    from darts_jax.tasks.pseudodepth.pretrain import PretrainConfig, pretrain

    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "d_lr": args.d_lr,
             "lambda_rec": args.lambda_rec,
             "seed": args.seed, "checkpoint_every": args.checkpoint_every, **_model_flags(args)}
    config = _run_config(PretrainConfig, args.workdir, args.restart, flags)
    if args.gan_loss is not None:
        config = dataclasses.replace(config, gan_loss=None if args.gan_loss == "none" else args.gan_loss)
    splits = load_presentation_corpus(args.data)
    result = pretrain(config, splits["train"], args.workdir, monitor={"dev": splits["dev"]},
                      monitor_metrics=depth_separation, restart=args.restart, quiet=args.quiet)
    print(f"{'stopped' if result.interrupted else 'finished'} at step {result.step}: {args.workdir}")
    return 0


def _cmd_depth_train(args) -> int:
    from darts_jax.data.synthfaces.presentation import load_presentation_corpus
    from darts_jax.spoofing.pad_report import dev_eer_metrics
    from darts_jax.tasks.pseudodepth.train import DepthTrainConfig, train

    flags = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "method": args.method, "reuse": args.reuse, "pretrained": args.pretrained,
             "freeze_epochs": args.freeze_epochs, "lambda_depth": args.lambda_depth,
             "fuse_depth": args.fuse_depth, "checkpoint_every": args.checkpoint_every, **_model_flags(args)}
    config = _run_config(DepthTrainConfig, args.workdir, args.restart, flags)
    splits = load_presentation_corpus(args.data)
    result = train(config, splits["train"], args.workdir, dev_arrays=splits["dev"], dev_metrics=dev_eer_metrics,
                   restart=args.restart, quiet=args.quiet)
    print(f"{'stopped' if result.interrupted else 'finished'} at step {result.step}: {args.workdir}")
    return 0


def _cmd_depth_evaluate(args) -> int:
    from darts_jax.data.synthfaces.presentation import load_presentation_corpus
    from darts_jax.spoofing.pad_report import evaluate_depth_run

    out = Path(args.out or Path(args.workdir) / "pad_report.json")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists and is not overwritten: pass --overwrite or another --out")
    report = evaluate_depth_run(args.workdir, load_presentation_corpus(args.data))
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['method']}, {report['parameters']} parameters, threshold {report['threshold']:.4f} (dev EER "
          f"{100 * report['dev_eer']:.2f} %)")
    for split in ("test_intra", "test_cross"):
        figures = report[split]
        print(f"{split}: ACER {100 * figures['acer']:.2f} %  HTER {100 * figures['hter']:.2f} %  "
              f"AUC {figures['auc']:.4f}")
    print(f"report: {out}")
    return 0


def add_face_commands(sub) -> None:
    """Adds make-synthetic-faces, depth-pretrain, depth-train and depth-evaluate to the subcommands `sub`."""
    p = sub.add_parser("make-synthetic-faces", help="procedural face corpora (presentation attacks, manipulations)")
    p.add_argument("--out", required=True, help="folder to create; an existing other corpus is never overwritten")
    p.add_argument("--kind", choices=("presentation", "manipulation"), required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-per-class", type=int, help="presentation: live (and attack) train images (default 800)")
    p.add_argument("--eval-per-class", type=int, help="presentation: per class in dev and each test (default 250)")
    p.set_defaults(func=_cmd_make_synthetic_faces)

    p = sub.add_parser("depth-pretrain", help="stage 1: adversarial (or L1-only) pseudo-depth generator")
    _add_common(p)
    p.add_argument("--gan-loss", choices=("bce", "lsgan", "none"), help="none: the L1-only ablation (default bce)")
    p.add_argument("--lambda-rec", type=float, help="weight of the L1 to the true depth (default 100)")
    p.add_argument("--d-lr", type=float, help="the discriminator's Adam learning rate (default 5e-5; G's --lr 2e-4)")
    p.set_defaults(func=_cmd_depth_pretrain)

    p = sub.add_parser("depth-train", help="stage 2: live/spoof classifier (scratch, aux, or reusing stage 1)")
    _add_common(p)
    p.add_argument("--method", choices=("scratch", "aux", "reuse"))
    p.add_argument("--pretrained", help="reuse: the workdir of a depth-pretrain run")
    p.add_argument("--reuse", choices=("encoder", "encoder_decoder"))
    p.add_argument("--freeze-epochs", type=int, help="reuse: first epochs that train only the head")
    p.add_argument("--lambda-depth", type=float, help="aux: weight of the depth L1 (default 1)")
    p.add_argument("--fuse-depth", action="store_true", default=None,
                   help="score = mean of the live probability and the mean predicted depth")
    p.set_defaults(func=_cmd_depth_train)

    p = sub.add_parser("depth-evaluate", help="APCER/BPCER/ACER, HTER and AUC of a depth-train run")
    p.add_argument("--workdir", required=True, help="a depth-train run (its newest checkpoint)")
    p.add_argument("--data", required=True, help="the corpus folder; the threshold is fixed on its dev split")
    p.add_argument("--out", help="JSON report (default WORKDIR/pad_report.json)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_depth_evaluate)


def _add_common(p) -> None:
    p.add_argument("--data", required=True, help="a folder made by make-synthetic-faces --kind presentation")
    p.add_argument("--workdir", required=True, help="checkpoints and logs; resumed if it has any")
    p.add_argument("--restart", action="store_true", help="move this workdir's run aside and start over")
    for flag, kind in (("--epochs", int), ("--batch-size", int), ("--lr", float), ("--seed", int),
                       ("--checkpoint-every", int), ("--width", int), ("--levels", int)):
        p.add_argument(flag, type=kind)
    p.add_argument("--quiet", action="store_true")
