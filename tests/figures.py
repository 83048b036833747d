"""Helpers of the figure tests: a PNG check and search-log records."""
import numpy as np
from matplotlib.image import imread

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import random_genotype

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def fake_records(epochs, seed=0, n_ops=len(PRIMITIVES)):
    rng = np.random.default_rng(seed)
    return [{"step": 10 * epoch, "epoch": epoch, "genotype": random_genotype(epoch).to_dict(),
             "arch": {"alphas_normal": rng.normal(size=(14, n_ops)).tolist(),
                      "alphas_reduce": rng.normal(size=(14, n_ops)).tolist(),
                      "betas_normal": rng.normal(size=14).tolist(),
                      "betas_reduce": rng.normal(size=14).tolist()}}
            for epoch in epochs]


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = imread(path)
    assert image.ndim == 3 and min(image.shape[:2]) >= 300
    # A blank canvas would be one colour; a drawn figure has many (antialiasing alone makes dozens).
    rgba = np.round(image * 255).astype(np.uint8)
    colours = rgba[..., 0].astype(np.uint32) << 16 | rgba[..., 1].astype(np.uint32) << 8 | rgba[..., 2]
    assert np.unique(colours).size > 20
