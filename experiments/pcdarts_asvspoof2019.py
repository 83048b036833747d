"""Paper protocol of Ge et al. (Interspeech 2021) on ASVspoof 2019 LA, with the authors' defaults.

    python experiments/pcdarts_asvspoof2019.py --data /path/to/LA --workdir runs/pcdarts [--size 16-64]

1. search: 4 layers / 16 channels on masked LFCC, batch 64, 50 epochs with 10 warm-up (trn_h / trn_t);
2. train the searched genotype from scratch at --size (4-16, 8-32 or 16-64): batch 128, 100 epochs;
3. evaluate on the eval partition and write the ASVspoof score file.
Each phase resumes from its checkpoints when the command is run again.
"""
import argparse
from pathlib import Path

from darts_jax.spaces import get_space
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spoofing.metrics import format_report
from darts_jax.spoofing.pipeline import load_trained, run_search, run_train, score_corpus
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.train import TrainConfig

SIZES = {"4-16": (4, 16), "8-32": (8, 32), "16-64": (16, 64)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the LA folder")
    parser.add_argument("--workdir", default="runs/pcdarts_asvspoof2019")
    parser.add_argument("--size", choices=SIZES, default="16-64", help="layers-channels of the trained network")
    parser.add_argument("--frontend", choices=("lfcc", "lfb", "spec"), default="lfcc")
    parser.add_argument("--genotype", help="skip the search and train this genotype (name, JSON file or string)")
    args = parser.parse_args()
    workdir = Path(args.workdir)

    genotype = args.genotype
    if genotype is None:
        search = SearchConfig(model=ModelConfig(frontend=args.frontend, mask=True))
        genotype = run_search(search, args.data, workdir / "search").genotype.to_string()
    layers, channels = SIZES[args.size]
    train = TrainConfig(model=ModelConfig(frontend=args.frontend, layers=layers, init_channels=channels, mask=True),
                        genotype=genotype)
    run_train(train, args.data, workdir / f"train-{args.size}")
    config, genotype, variables = load_trained(workdir / f"train-{args.size}")
    metrics = score_corpus(get_space(config.space), config.model, genotype, variables, args.data,
                           workdir / f"train-{args.size}" / "scores-eval.txt")
    print(format_report(metrics))


if __name__ == "__main__":
    main()
