"""`darts-jax benchmark`: step time, compile time, peak memory and host overhead of the loops' own compiled
steps (darts_jax.benchmark), or the audio loader's throughput."""
from __future__ import annotations

import argparse
import json

from darts_jax.cli_sampler import add_benchmark_sampler_flag


def _command(model_from_args):
    def run(args) -> int:
        if args.what == "loader":
            from darts_jax.data.loader import measure_throughput

            if args.data is None:
                raise ValueError("--data: the loader benchmark reads a corpus; make one with "
                                 "`darts-jax make-synthetic`")
            result = {"loader": measure_throughput(args.data, batch_size=args.batch_size, num_workers=args.workers)}
            print(f"loader: {result['loader']['utterances_per_second']:.0f} utterances/s "
                  f"({args.workers} workers, batch {args.batch_size})")
        else:
            from darts_jax.benchmark import run_benchmarks

            partial_ks = [int(k) for k in args.partial_k_list.split(",")]
            space = {"space": args.space} if args.space else {}
            result = run_benchmarks(args.what, partial_ks, args.batch_size, model_from_args(args),
                                    samplers=args.sampler_list.split(","), steps=args.steps,
                                    packed_state=args.packed_state, **space)
        if args.json:
            print(json.dumps(result))
        return 0

    return run


def add_benchmark_command(sub, add_model_flags, model_from_args, add_compile_cache_flag,
                          add_packed_state_flag) -> None:
    p = sub.add_parser("benchmark", help="step time, compile time, peak memory and host overhead; or loader "
                                         "throughput")
    p.add_argument("--what", choices=("search", "train", "loader"), default="search")
    add_model_flags(p, partial_k=False)
    p.add_argument("--partial-k", dest="partial_k_list", default="1,2,4", help="comma-separated K values")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--steps", type=int, default=10, help="steps timed after warm-up (at least 10)")
    p.add_argument("--mask", action=argparse.BooleanOptionalAction, default=None, help="masking, as `search --mask`")
    add_compile_cache_flag(p, default="none: compile times are what is measured")
    add_packed_state_flag(p)
    p.add_argument("--data", help="corpus for --what loader")
    p.add_argument("--workers", type=int, default=4)
    add_benchmark_sampler_flag(p)
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(func=_command(model_from_args))
