"""Paper protocol of Raw PC-DARTS (Ge, Patino, Todisco, Evans, ASVspoof 2021) on ASVspoof 2019 LA.

    python experiments/raw_pcdarts_asvspoof2019.py --data /path/to/LA --workdir runs/raw [--config mel-fixed]

Both published configurations (spec §1.3), 8 cells / 64 channels, masked sinc, P2SGrad:
- mel-fixed: fixed mel-scale sinc (the README genotype `raw-pcdarts-mel`, EER 1.77 %);
- linear-learnable: linear-scale sinc learned during the search, frozen in training (EER 2.05 %).
1. search: trn_h / trn_t, batch 14, 30 epochs with 10 warm-up, Adam 5e-5 constant (spec §5.3);
2. train the searched genotype from scratch: batch 32, 100 epochs, cosine 5e-5 -> 2e-5, drop path 0;
   a learnable search's band edges are loaded and frozen;
3. evaluate on the eval partition and write the ASVspoof score file (score = cos θ of bona fide).
Each phase resumes from its checkpoints when the command is run again.
"""
import argparse
from pathlib import Path

from darts_jax.engine.config import replace_fields
from darts_jax.spaces import get_space
from darts_jax.spaces.raw import ModelConfig
from darts_jax.spoofing.metrics import format_report
from darts_jax.spoofing.pipeline import load_trained, run_search, run_train, score_corpus
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.train import TrainConfig

CONFIGS = {"mel-fixed": dict(sinc_scale="mel", learnable_sinc=False),
           "linear-learnable": dict(sinc_scale="linear", learnable_sinc=True)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the LA folder")
    parser.add_argument("--workdir", default="runs/raw_pcdarts_asvspoof2019")
    parser.add_argument("--config", choices=CONFIGS, default="mel-fixed")
    parser.add_argument("--genotype", help="skip the search and train this genotype (name, JSON file or string); "
                                           "mel-fixed only, e.g. raw-pcdarts-mel")
    args = parser.parse_args()
    space = get_space("raw")
    workdir = Path(args.workdir) / args.config
    search_model = ModelConfig(**CONFIGS[args.config])

    genotype = args.genotype
    if genotype is not None and search_model.learnable_sinc:
        parser.error("--genotype: a learnable configuration trains with its own search's band edges; search first")
    if genotype is None:
        search = replace_fields(SearchConfig(model=search_model, space=space.name), dict(space.search_defaults))
        genotype = run_search(search, args.data, workdir / "search").genotype.to_string()
    # Training freezes the sinc: a learnable search hands over its learned band edges.
    train_model = ModelConfig(sinc_scale=search_model.sinc_scale,
                              sinc_from=str(workdir / "search") if search_model.learnable_sinc else None)
    train = replace_fields(TrainConfig(model=train_model, space=space.name), dict(space.train_defaults))
    train = replace_fields(train, {"genotype": genotype})
    run_train(train, args.data, workdir / "train")
    config, genotype, variables = load_trained(workdir / "train")
    metrics = score_corpus(space, config.model, genotype, variables, args.data, workdir / "train" / "scores-eval.txt")
    print(format_report(metrics))


if __name__ == "__main__":
    main()
