"""The `darts-jax` command line: argument parsing only; every command calls library functions."""
from __future__ import annotations

import argparse
import os
import sys

from darts_jax.cli_inference import add_inference_commands
from darts_jax.cli_benchmark import add_benchmark_command
from darts_jax.cli_sampler import add_remedy_flags, add_sampler_flags
from darts_jax.cli_sweep import add_sweep_command
from darts_jax.cli_faces import add_face_commands
from darts_jax.cli_fusion import add_fusion_commands
from darts_jax.cli_adapt import add_adapt_commands

DEFAULT_SPACE = "pcdarts"


def _cmd_params(args) -> int:
    from jax import eval_shape as jax_eval_shape

    from darts_jax.engine.state import count_params
    from darts_jax.spaces import get_space

    space = get_space(args.space or DEFAULT_SPACE)
    model = _model_from_args(args)
    if args.supernet:
        variables, arch = jax_eval_shape(lambda: space.init_supernet(0, model))
        print(f"{space.name} supernet: {count_params(arch)} architecture values")
        print(count_params(variables["params"]))
    else:
        genotype = space.load_genotype(args.genotype, model)
        print(space.genotype_text(genotype))
        print(count_params(jax_eval_shape(lambda: space.init_network(0, model, genotype))["params"]))
    return 0


def _cmd_make_synthetic(args) -> int:
    from darts_jax.data.synthspoof.corpus import make_corpus

    make_corpus(args.out, size=args.size, seed=args.seed)
    return 0


def _cmd_check_data(args) -> int:
    from darts_jax.data.check import check_corpus

    problems = check_corpus(args.data)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) found in {args.data}")
    return 1 if problems else 0


def _cmd_audit_data(args) -> int:
    import json
    from pathlib import Path

    from darts_jax.spoofing.audit import audit_corpus, format_audit

    audit = audit_corpus(args.data, args.fit, args.test)
    print(format_audit(audit))
    if args.json:
        Path(args.json).write_text(json.dumps(audit.to_json(), indent=2) + "\n")
    failures = audit.failures()
    for failure in failures:
        print(f"under the bound: {failure}")
    print(f"{len(failures)} figure(s) under the bounds for a corpus of SynthSpoof small's size "
          f"({audit.trials['bona_fide']} bona fide, {audit.trials['spoof']} spoof eval trials here)")
    return 0


def _cmd_score(args) -> int:
    import json

    from darts_jax.spoofing.metrics import evaluate_scores, format_report
    from darts_jax.spoofing.scores import read_asv_scores, read_cm_scores

    cm_trials = read_cm_scores(args.cm_scores)
    if args.calibration:
        from darts_jax.spoofing.calibration import read_calibration

        cm_trials = read_calibration(args.calibration).apply(cm_trials)
    asv_trials = None if args.asv_scores is None else read_asv_scores(args.asv_scores)
    result = evaluate_scores(cm_trials, asv_trials)
    print(format_report(result))
    if args.json:
        print(json.dumps(result))
    return 0


def _model_from_args(args):
    from darts_jax.engine.config import replace_fields
    from darts_jax.spaces import get_space

    return replace_fields(get_space(args.space or DEFAULT_SPACE).config_type(), _given(args))


def _given(args) -> dict:
    return {k: v for k, v in vars(args).items() if v is not None}


def _run_config(cls, args):
    """A Search/TrainConfig from the flags given. Resuming (a workdir with checkpoints, no --restart), the
    run's saved settings stand in for the flags not given; otherwise the space's defaults, or else the
    dataclass defaults. The run driver refuses given flags that would change a resumed run."""
    from darts_jax.engine.config import replace_fields
    from darts_jax.spaces import get_space
    from darts_jax.tasks.common import resumable_config
    from darts_jax.tasks.search import SearchConfig

    saved = None if args.restart else resumable_config(cls, args.workdir)
    if saved is not None:
        if args.space not in (None, saved.space):
            raise ValueError(f"--space {args.space}: the run in {args.workdir} searches space {saved.space!r}; "
                             f"drop --space to resume it, or --restart")
        return replace_fields(saved, _given(args))
    args.space = args.space or DEFAULT_SPACE
    space = get_space(args.space)
    defaults = dict(space.search_defaults if cls is SearchConfig else space.train_defaults)
    config = replace_fields(cls(model=_model_from_args(args), space=args.space), defaults, strict=True)
    return replace_fields(config, _given(args))


def _cmd_search(args) -> int:
    from darts_jax.engine.parallel import maybe_initialize_distributed
    from darts_jax.spoofing.pipeline import run_search
    from darts_jax.tasks.search import SearchConfig

    maybe_initialize_distributed()
    config = _run_config(SearchConfig, args)
    result = run_search(config, args.data, args.workdir, restart=args.restart, quiet=args.quiet,
                        workers=args.workers)
    from darts_jax.spaces import get_space

    print(get_space(config.space).genotype_text(result.genotype))
    return 0


def _cmd_train(args) -> int:
    from darts_jax.engine.parallel import maybe_initialize_distributed
    from darts_jax.spoofing.pipeline import run_train
    from darts_jax.tasks.train import TrainConfig

    maybe_initialize_distributed()
    run_train(_run_config(TrainConfig, args), args.data, args.workdir, restart=args.restart, quiet=args.quiet,
              workers=args.workers)
    return 0


def _cmd_evaluate(args) -> int:
    from pathlib import Path

    from darts_jax.spaces import get_space
    from darts_jax.spoofing.export import load_model
    from darts_jax.spoofing.metrics import format_report
    from darts_jax.spoofing.pipeline import load_trained_checkpoint, score_corpus

    if (args.workdir is None) == (args.model is None):
        raise ValueError("give exactly one of --workdir (a training run) or --model (an exported model)")
    if args.model:
        space, model, genotype, variables = load_model(args.model)
        where, provenance = Path(args.model), {"model": str(Path(args.model).resolve())}
    else:
        config, genotype, variables, provenance = load_trained_checkpoint(args.workdir, args.checkpoint)
        space, model, where = get_space(config.space), config.model, Path(args.workdir)
    name = args.partition if args.corpus == "2019-la" else args.corpus
    out = Path(args.out) if args.out else where / f"scores-{name}.txt"
    result = score_corpus(space, model, genotype, variables, args.data, out, corpus=args.corpus,
                          partition=args.partition, batch_size=args.batch_size, overwrite=args.overwrite,
                          provenance=provenance, trim_silence=args.trim_silence)
    print(format_report(result))
    print(f"scores written to {out}")
    return 0


def _cmd_export(args) -> int:
    from darts_jax.spoofing.pipeline import export

    out = export(args.out, workdir=args.workdir, model_dir=args.model, fmt=args.format,
                 calibration_path=args.calibration)
    print(f"model written to {out}")
    return 0


def _cmd_predict(args) -> int:
    from darts_jax.spoofing.predict import run_predict

    return run_predict(args.model, args.inputs, threshold=args.threshold, target_far=args.target_far,
                       long_audio=args.long_audio, fmt=args.format, batch_size=args.batch_size)


def _cmd_demo(args) -> int:
    from darts_jax.demo import run_demo

    result = run_demo(args.workdir)
    print(f"eval EER {result['eer_percent']:.2f} % (LFCC-GMM {result['gmm_eer_percent']:.2f} %)  "
          f"report: {result['report']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darts-jax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="search, train and score on the built-in SynthSpoof corpus; writes a report")
    p.add_argument("--workdir", default="runs/demo", help="corpus, runs and report (resumed if present)")
    add_compile_cache_flag(p)
    p.set_defaults(func=_cmd_demo)
    add_sweep_command(sub, add_compile_cache_flag)

    p = sub.add_parser("params", help="count the trainable parameters of a derived network or the supernet")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--genotype", help="JSON file, genotype string, or known name (e.g. pcdarts-lfcc)")
    which.add_argument("--supernet", action="store_true", help="count the search supernet's weights")
    _add_model_flags(p)
    p.set_defaults(func=_cmd_params)

    p = sub.add_parser("make-synthetic", help="write the SynthSpoof corpus in the ASVspoof 2019 LA layout")
    p.add_argument("--out", required=True, help="folder to create (becomes a --data folder)")
    p.add_argument("--size", choices=("tiny", "small", "medium"), default="small")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_make_synthetic)

    p = sub.add_parser("check-data", help="validate a whole corpus and list every problem")
    p.add_argument("--data", required=True, help="folder holding the LA partitions")
    p.set_defaults(func=_cmd_check_data)

    p = sub.add_parser("audit-data", help="trivial-cue audit: EER of level, silence, DC, band, order... cues")
    p.add_argument("--data", required=True, help="folder in the ASVspoof 2019 LA layout")
    p.add_argument("--fit", default="train", help="partition the classifiers are fitted on")
    p.add_argument("--test", default="eval", help="partition they are scored on")
    p.add_argument("--json", help="also write every figure (per attack too) to this JSON file")
    p.set_defaults(func=_cmd_audit_data)

    p = sub.add_parser("score", help="EER and min t-DCF of an ASVspoof score file")
    p.add_argument("--cm-scores", required=True, help="utt_id attack_id key score, one trial a line")
    p.add_argument("--asv-scores", help="ASV scores (source key score) for the min t-DCF")
    p.add_argument("--calibration", help="calibration.json: turn the scores into LLRs first (for actDCF, Cllr)")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=_cmd_score)

    add_inference_commands(sub)  # calibrate, fuse, import-pytorch
    add_face_commands(sub)  # make-synthetic-faces, depth-pretrain, depth-train, depth-evaluate
    add_adapt_commands(sub)  # adapt-teacher, adapt

    p = sub.add_parser("search", help="PC-DARTS search on trn_h (weights) / trn_t (architecture)")
    _add_model_flags(p)
    _add_run_flags(p)
    p.add_argument("--warmup-epochs", type=int, help="epochs before α/β start to move (default 10)")
    p.add_argument("--arch-lr", type=float, help="architecture Adam learning rate (default 6e-4)")
    p.add_argument("--unrolled", action="store_true", default=None, help="second-order architecture gradient")
    p.add_argument("--hessian-every", type=int, help="epochs between Hessian eigenvalues (default 1; 0: never)")
    add_sampler_flags(p)
    add_remedy_flags(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("train", help="train a derived network from scratch")
    _add_model_flags(p)
    _add_run_flags(p)
    p.add_argument("--genotype", help="JSON file, genotype string or known name (default pcdarts-lfcc)")
    p.add_argument("--drop-path", type=float, help="final drop-path probability (default 0.2)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="score a corpus with a trained model; writes an ASVspoof score file")
    p.add_argument("--workdir", help="a training run (its newest checkpoint)")
    p.add_argument("--model", help="a folder written by `darts-jax export`")
    p.add_argument("--data", required=True, help="the corpus folder (for 2019-la the LA folder)")
    p.add_argument("--corpus", default="2019-la", choices=("2019-la", "2021-la", "2021-df", "itw"),
                   help="2019 LA (default), ASVspoof 2021 LA or DF eval with its keys, or In-the-Wild")
    p.add_argument("--partition", default="eval", choices=("train", "dev", "eval"), help="2019-la only")
    p.add_argument("--out", help="score file (default: scores-<partition or corpus>.txt beside the model)")
    p.add_argument("--checkpoint", default="last", help="with --workdir: last (default), best (lowest dev EER "
                   "among the epoch ends kept) or a step number; recorded in <out>.json")
    p.add_argument("--overwrite", action="store_true", help="replace an existing score file")
    p.add_argument("--trim-silence", action="store_true",
                   help="score each file without its leading and trailing non-speech (the silence audit)")
    p.add_argument("--batch-size", type=int, default=64)
    add_compile_cache_flag(p, default="beside --workdir; none with --model")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("export", help="write a self-contained model folder (or a portable StableHLO one)")
    p.add_argument("--workdir", help="a training run (its newest checkpoint)")
    p.add_argument("--model", help="a model folder (to add a calibration, or to convert it to StableHLO)")
    p.add_argument("--out", required=True)
    p.add_argument("--format", choices=("folder", "stablehlo"), default="folder",
                   help="folder: darts_jax model folder (default); stablehlo: jax.export, runs without darts_jax")
    p.add_argument("--calibration", help="calibration.json from `darts-jax calibrate` (LLRs, dev EER threshold)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("predict", help="raw score, LLR and bona fide / spoof decision per audio file")
    p.add_argument("--model", required=True, help="a model folder or a StableHLO folder from `darts-jax export`")
    p.add_argument("inputs", nargs="+", help="audio files, folders (searched recursively) or list files (.txt)")
    p.add_argument("--threshold", type=float, help="raw-score threshold (default: the stored dev EER threshold)")
    p.add_argument("--target-far", type=float, help="threshold for this dev false-acceptance rate (a fraction)")
    p.add_argument("--long-audio", choices=("mean", "max", "first"), default="mean",
                   help="files longer than the model's window: mean (default) or max over windows, or first window")
    p.add_argument("--format", choices=("table", "csv", "json"), default="table", help="json: one object a line")
    p.add_argument("--batch-size", type=int, default=16)
    p.set_defaults(func=_cmd_predict)

    add_benchmark_command(sub, _add_model_flags, _model_from_args, add_compile_cache_flag, add_packed_state_flag)
    add_fusion_commands(sub, _run_config)  # make-synthetic-av, pretrain-backbones; search/train/evaluate --space fusion
    return parser


def _add_run_flags(p) -> None:
    """Flags shared by search and train; unset ones keep the config's defaults (spec §5.2)."""
    p.add_argument("--data", required=True, help="folder holding the LA partitions and protocols")
    p.add_argument("--workdir", required=True, help="checkpoints, logs and results; resumed if it has any")
    p.add_argument("--restart", action="store_true", help="discard this workdir's checkpoints and start over")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-min", type=float)
    p.add_argument("--mask", action=argparse.BooleanOptionalAction, default=None,
                   help="masking in training (pcdarts: frequency, default off; raw: sinc filters, default on)")
    p.add_argument("--seed", type=int)
    p.add_argument("--steps-per-epoch", type=int, help="default: one pass over the data")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (also at each epoch end)")
    p.add_argument("--keep-checkpoints", type=int)
    p.add_argument("--keep-best", type=int,
                   help="epoch ends with the lowest dev EER kept beside the newest ones (default 1)")
    p.add_argument("--log-every", type=int)
    p.add_argument("--init-from", help="workdir of an earlier run whose newest weights this run starts from")
    add_packed_state_flag(p)
    p.add_argument("--workers", type=int, default=4, help="audio decoding threads")
    p.add_argument("--quiet", action="store_true")
    add_compile_cache_flag(p)


def add_packed_state_flag(p) -> None:
    p.add_argument("--packed-state", action=argparse.BooleanOptionalAction, default=None,
                   help="the state between steps as a few flat buffers (less host time per step, longer compile; "
                        "default: on GPU and TPU, off on CPU)")


def add_compile_cache_flag(p, default: str = "a folder jax-compile-cache beside the workdir") -> None:
    p.add_argument("--compile-cache", help=f"persistent compilation cache folder, or none (default: {default})")


def _add_model_flags(p, partial_k: bool = True) -> None:
    p.add_argument("--space", help=f"search space (default {DEFAULT_SPACE}, the 2-D PC-DARTS space)")
    # Unset model flags keep the space's defaults (pcdarts: 4 layers, 16 channels, LFCC, 4 s, K = 2).
    p.add_argument("--layers", type=int)
    p.add_argument("--init-channels", type=int)
    # Each space checks its own front ends: pcdarts lfcc, lfb, spec; raw sinc, conv.
    p.add_argument("--frontend", help="pcdarts: lfcc (default), lfb or spec; raw: sinc (default) or conv")
    p.add_argument("--num-samples", type=int, help="audio length in samples (default 64000: 4 s at 16 kHz)")
    p.add_argument("--sinc-scale", choices=("mel", "linear", "lem"), help="raw: sinc band spacing (default mel)")
    p.add_argument("--learnable-sinc", action="store_true", default=None,
                   help="raw: learn the sinc band edges (search only)")
    p.add_argument("--sinc-from", help="raw: a --learnable-sinc search workdir whose band edges are used, frozen")
    if partial_k:
        p.add_argument("--partial-k", type=int, help="1/K of the channels go through the ops (default 2)")


def _enable_compile_cache(args) -> None:
    """Before anything compiles: --compile-cache, else $DARTS_JAX_COMPILE_CACHE, else beside the workdir."""
    from darts_jax.engine import compile_cache

    directory = args.compile_cache or os.environ.get("DARTS_JAX_COMPILE_CACHE")
    if directory is None and getattr(args, "workdir", None):
        directory = compile_cache.default_directory(args.workdir)
    compile_cache.enable(directory)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if hasattr(args, "compile_cache"):
            _enable_compile_cache(args)
        code = args.func(args)
        if hasattr(args, "compile_cache"):
            from darts_jax.engine import compile_cache

            if compile_cache.summary() and not getattr(args, "quiet", False):
                print(compile_cache.summary(), file=sys.stderr)
        return code
    except BrokenPipeError:
        # `darts-jax score ... | head`: the reader has gone; nothing more is wanted, and nothing is wrong.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (ValueError, OSError, RuntimeError, FloatingPointError) as err:
        print(f"darts-jax {args.command}: error: {err}", file=sys.stderr)
        return 2
