"""The published genotype versus the searched one versus a random genotype, trained alike.

    python experiments/compare_genotypes.py --data /path/to/LA --searched runs/pcdarts/search/genotype.json \
        --workdir runs/compare [--size 4-16] [--random-seed 0]

Each genotype is trained from scratch with the authors' training settings at the same size and scored
on eval; the table at the end lists parameters, pooled EER and min t-DCF.
"""
import argparse
from pathlib import Path

from darts_jax.engine.config import with_fields
from darts_jax.spaces import get_space
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import random_genotype
from darts_jax.spaces.pcdarts2d.genotype_text import KNOWN_GENOTYPES, load_genotype
from darts_jax.spaces.pcdarts2d.network import count_network_params
from darts_jax.spoofing.pipeline import load_trained, run_train, score_corpus
from darts_jax.tasks.train import TrainConfig

SIZES = {"4-16": (4, 16), "8-32": (8, 32), "16-64": (16, 64)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--searched", required=True, help="genotype of your search (JSON file, string or name)")
    parser.add_argument("--workdir", default="runs/compare_genotypes")
    parser.add_argument("--size", choices=SIZES, default="4-16")
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    layers, channels = SIZES[args.size]
    model = ModelConfig(layers=layers, init_channels=channels, mask=True)
    candidates = {"published": KNOWN_GENOTYPES["pcdarts-lfcc"], "searched": load_genotype(args.searched),
                  f"random-{args.random_seed}": random_genotype(args.random_seed)}
    rows = []
    for name, genotype in candidates.items():
        workdir = Path(args.workdir) / name
        run_train(with_fields(TrainConfig(model=model, genotype=genotype.to_string()), epochs=args.epochs),
                  args.data, workdir)
        config, genotype, variables = load_trained(workdir)
        metrics = score_corpus(get_space(config.space), config.model, genotype, variables, args.data,
                               workdir / "scores-eval.txt")
        rows.append((name, count_network_params(model, genotype), metrics["eer_percent"], metrics["min_tdcf"]))
    print(f"{'genotype':<14}{'params':>10}{'EER %':>10}{'min t-DCF':>12}")
    for name, params, eer, tdcf in rows:
        print(f"{name:<14}{params:>10,}{eer:>10.2f}{'n/a' if tdcf is None else f'{tdcf:.4f}':>12}")


if __name__ == "__main__":
    main()
