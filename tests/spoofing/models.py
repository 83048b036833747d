"""Small model folders for the inference tests: a 1-layer / 4-channel network with seeded random weights.

Inference code does not care whether weights were trained, so no training is spent here; the
genotype is test_pipeline's (pools, separable convs and a stride-2 skip connection).
"""
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype_text import load_genotype
from darts_jax.spaces.pcdarts2d.network import init_network
from darts_jax.spoofing.export import export_model
from darts_jax.tasks.train import TrainConfig
from tests.spoofing.test_pipeline import GENOTYPE

MODEL = ModelConfig(layers=1, init_channels=4)


def make_model_folder(out_dir, seed: int = 0, calibration=None):
    genotype = load_genotype(GENOTYPE)
    return export_model(out_dir, TrainConfig(model=MODEL, genotype=GENOTYPE), genotype,
                        init_network(seed, MODEL, genotype), calibration=calibration)
