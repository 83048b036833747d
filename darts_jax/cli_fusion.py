"""The audio-visual commands: `make-synthetic-av`, `pretrain-backbones`, and `--space fusion` for `search`,
`train` and `evaluate` (a run of the fusion space reads a SynthAV folder's cached backbone features)."""
from __future__ import annotations

import json
from pathlib import Path

FUSION = "fusion"


def _cmd_make_synthetic_av(args) -> int:
    from darts_jax.data.synthav.corpus import make_corpus

    make_corpus(args.out, size=args.size, seed=args.seed, extra_lipsync_train=args.extra_lipsync_train)
    return 0


def _cmd_pretrain_backbones(args) -> int:
    from darts_jax.spaces.fusion.backbones import PretrainConfig
    from darts_jax.spoofing.av_pipeline import pretrain_backbones

    config = PretrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    pretrain_backbones(args.data, name=args.features, widths=args.widths, blocks=args.blocks, grid=args.grid,
                       length=args.length, config=config)
    return 0


def _saved_space(workdir) -> str | None:
    path = Path(workdir) / "config.json" if workdir else None
    if path is None or not path.is_file():
        return None
    try:
        return json.loads(path.read_text()).get("space")
    except (json.JSONDecodeError, AttributeError):
        return None  # the generic handler names the bad file


def _is_fusion(args) -> bool:
    if args.space is not None:
        return args.space == FUSION
    return not getattr(args, "restart", False) and _saved_space(args.workdir) == FUSION


def _fusion_search(args, run_config) -> int:
    from darts_jax.spaces import get_space
    from darts_jax.spoofing.av_pipeline import run_fusion_search
    from darts_jax.tasks.search import SearchConfig

    config = run_config(SearchConfig, args)
    result = run_fusion_search(config, args.data, args.workdir, features_name=args.features,
                               categories=args.categories, restart=args.restart, quiet=args.quiet)
    print(get_space(FUSION).genotype_text(result.genotype))
    return 0


def _fusion_train(args, run_config) -> int:
    from darts_jax.spoofing.av_pipeline import run_fusion_train
    from darts_jax.tasks.train import TrainConfig

    run_fusion_train(run_config(TrainConfig, args), args.data, args.workdir, features_name=args.features,
                     categories=args.categories, restart=args.restart, quiet=args.quiet)
    return 0


def _fusion_evaluate(args, run_config) -> int:
    del run_config  # evaluation reads the training run's saved config
    from darts_jax.spaces import get_space
    from darts_jax.spoofing.av_pipeline import score_fusion, write_scores
    from darts_jax.spoofing.av_report import METRICS, format_table, plot_roc
    from darts_jax.spoofing.pipeline import load_trained_checkpoint

    if args.workdir is None:
        raise ValueError("--workdir: the fusion space scores a training run (--model is for exported audio models)")
    config, genotype, variables, provenance = load_trained_checkpoint(args.workdir, args.checkpoint)
    split = args.partition
    scores, metrics = score_fusion(get_space(FUSION), config, genotype, variables, args.data, split=split,
                                   features_name=args.features)
    out = Path(args.out) if args.out else Path(args.workdir) / f"scores-{split}.txt"
    write_scores(scores, out, {**provenance, "data": str(Path(args.data).resolve()), "split": split,
                               "metrics": metrics}, overwrite=args.overwrite)
    plot = plot_roc({get_space(FUSION).genotype_text(genotype): scores.score_diffs}, scores.attacks,
                    out.with_suffix(".roc.png"))
    for metric in METRICS:
        print(format_table({"fusion": metrics}, metric))
    print(f"scores written to {out}, ROC curve to {plot}")
    return 0


def _dispatch(generic, fusion, run_config):
    def handler(args) -> int:
        return fusion(args, run_config) if _is_fusion(args) else generic(args)

    return handler


def _names(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def _widths(text: str) -> tuple[int, ...]:
    return tuple(int(w) for w in text.split(","))


def add_fusion_commands(sub, run_config) -> None:
    """Adds make-synthetic-av and pretrain-backbones, and the fusion flags and dispatch of search, train and
    evaluate (which must be registered already); `run_config(cls, args)` builds a run's config from the
    flags as the generic commands do (darts_jax.cli._run_config)."""
    p = sub.add_parser("make-synthetic-av", help="write SynthAV, the built-in audio-visual deepfake corpus")
    p.add_argument("--out", required=True, help="folder to create (becomes a --data folder for --space fusion)")
    p.add_argument("--size", choices=("tiny", "small", "medium"), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--extra-lipsync-train", type=int, default=0, metavar="N",
                   help="N more RVRA and N more LS clips in train, for the lip-sync task (default 0)")
    p.set_defaults(func=_cmd_make_synthetic_av)

    p = sub.add_parser("pretrain-backbones", help="train, freeze and cache the audio and video backbones' taps")
    p.add_argument("--data", required=True, help="a SynthAV folder")
    p.add_argument("--features", default="backbones", help="name of the feature cache (features/NAME.npz)")
    p.add_argument("--widths", type=_widths, default=(16, 32, 64), help="channels per stage (default 16,32,64)")
    p.add_argument("--blocks", type=int, default=1, help="residual blocks per stage (the depth)")
    p.add_argument("--grid", type=int, default=4, help="cells per non-time axis a stage tap keeps in its channels "
                                                       "(0: none, BM-NAS' max over the whole map)")
    p.add_argument("--length", type=int, default=8, help="L: positions every tap is pooled to")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_pretrain_backbones)

    for command, fusion in (("search", _fusion_search), ("train", _fusion_train), ("evaluate", _fusion_evaluate)):
        p = sub.choices[command]
        p.add_argument("--features", default="backbones", help="fusion: the SynthAV feature cache to read")
        if command != "evaluate":
            p.add_argument("--taps", type=_names, help="fusion: comma-separated candidate taps (default all 8)")
            p.add_argument("--channels", type=int, help="fusion: C of the reshape layers and ops (default 128)")
            p.add_argument("--categories", type=_names, help="fusion: train on these SynthAV categories only, e.g. "
                                                            "RVRA,LS (the lip-sync task); default all")
        else:
            p.set_defaults(space=None)
        p.set_defaults(func=_dispatch(p.get_default("func"), fusion, run_config))
