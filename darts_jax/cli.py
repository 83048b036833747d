"""The `darts-jax` command line: argument parsing only; every command calls library functions."""
from __future__ import annotations

import argparse
import sys


def _cmd_params(args) -> int:
    from darts_jax import genotype as genotype_lib
    from darts_jax.config import ModelConfig
    from darts_jax.network import count_network_params
    from darts_jax.search_space import count_supernet_params

    model = ModelConfig(frontend=args.frontend, layers=args.layers, init_channels=args.init_channels,
                        partial_k=args.partial_k)
    if args.supernet:
        weights, arch_values = count_supernet_params(model)
        print(f"supernet {args.layers} layers / {args.init_channels} channels, K = {args.partial_k}: "
              f"{arch_values} architecture values")
        print(weights)
    else:
        genotype = genotype_lib.load_genotype(args.genotype)
        print(genotype.to_string())
        print(count_network_params(model, genotype))
    return 0


def _cmd_make_synthetic(args) -> int:
    from darts_jax.data.synthetic import make_corpus

    make_corpus(args.out, size=args.size, seed=args.seed)
    return 0


def _cmd_check_data(args) -> int:
    from darts_jax.data.check import check_corpus

    problems = check_corpus(args.data)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) found in {args.data}")
    return 1 if problems else 0


def _cmd_score(args) -> int:
    from darts_jax.scores import score_command

    return score_command(args.cm_scores, args.asv_scores, as_json=args.json)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="darts-jax", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

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

    p = sub.add_parser("score", help="EER and min t-DCF of an ASVspoof score file")
    p.add_argument("--cm-scores", required=True, help="utt_id attack_id key score, one trial a line")
    p.add_argument("--asv-scores", help="ASV scores (source key score) for the min t-DCF")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=_cmd_score)
    return parser


def _add_model_flags(p) -> None:
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--init-channels", type=int, default=16)
    p.add_argument("--frontend", choices=("lfcc", "lfb", "spec"), default="lfcc")
    p.add_argument("--partial-k", type=int, default=2, help="1/K of the channels go through the ops")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as err:
        print(f"darts-jax {args.command}: error: {err}", file=sys.stderr)
        return 2
