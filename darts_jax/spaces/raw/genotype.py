"""Genotypes of the raw space: PC-DARTS' cell form (darts_jax.spaces.pcdarts2d.genotype: derivation,
PyTorch text form, JSON, validation), over this space's primitives, and its published genotypes."""
from __future__ import annotations

from typing import Sequence

from darts_jax.spaces.pcdarts2d.genotype import CONCAT, Genotype
from darts_jax.spaces.pcdarts2d.genotype_text import load_genotype as load_cell_genotype
from darts_jax.spaces.raw.config import PRIMITIVES

KNOWN_GENOTYPES = {
    # The authors' README genotype, fixed mel-scale sinc (spec §2.6, Appendix).
    "raw-pcdarts-mel": Genotype(
        normal=(("dil_conv_5", 1), ("dil_conv_3", 0), ("dil_conv_5", 1), ("dil_conv_5", 2),
                ("std_conv_5", 2), ("skip_connect", 3), ("std_conv_5", 2), ("skip_connect", 4)),
        normal_concat=CONCAT,
        reduce=(("max_pool_3", 0), ("std_conv_3", 1), ("dil_conv_3", 0), ("dil_conv_3", 2),
                ("skip_connect", 0), ("dil_conv_5", 2), ("dil_conv_3", 0), ("avg_pool_3", 1)),
        reduce_concat=CONCAT,
    ),
}


def load_genotype(spec: str, primitives: Sequence[str] = PRIMITIVES) -> Genotype:
    """A name in KNOWN_GENOTYPES, a genotype JSON file, or the PyTorch `Genotype(...)` string."""
    return load_cell_genotype(spec, primitives, KNOWN_GENOTYPES)
