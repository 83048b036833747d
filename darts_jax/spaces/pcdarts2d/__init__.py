"""The 2-D PC-DARTS search space of Ge et al. (Interspeech 2021) on LFCC / LFB / spectrogram features.

`SPACE` is its record for the engine (darts_jax.engine.space), registered as "pcdarts". Modules:
`config` (model config, primitives), `operations`, `skeleton` (stems, cell plan, head), `supernet`,
`network` (the derived network), `genotype` (derivation, JSON form), `genotype_text` (the PyTorch text
form, published genotypes), `plots` (cells, α/β, collapse table).
"""
from __future__ import annotations

from darts_jax.engine.space import SearchSpace, register
from darts_jax.relaxations import softmax_np
from darts_jax.spaces.pcdarts2d import genotype as genotype_lib
from darts_jax.spaces.pcdarts2d import genotype_text
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES, SHAPE_FIELDS, ModelConfig
from darts_jax.spaces.pcdarts2d.network import DerivedNetwork, init_network
from darts_jax.spaces.pcdarts2d.supernet import SearchNetwork, init_supernet

SPACE = register(SearchSpace(
    name="pcdarts",
    config_type=ModelConfig,
    primitives=PRIMITIVES,
    supernet=SearchNetwork,
    network=DerivedNetwork,
    init_supernet=init_supernet,
    init_network=init_network,
    derive_genotype=lambda arch, model, op_weights=softmax_np: genotype_lib.derive_genotype(
        arch, model.primitives, model.max_skips, op_weights),
    genotype_to_dict=genotype_lib.Genotype.to_dict,
    genotype_from_dict=lambda data, model, where: genotype_lib.Genotype.from_json(data, model.primitives, where),
    load_genotype=lambda spec, model: genotype_text.load_genotype(spec, model.primitives),
    genotype_text=genotype_lib.Genotype.to_string,
    shape_fields=SHAPE_FIELDS,
    arch_diagnostics=lambda arch, model, op_weights=softmax_np: genotype_lib.collapse_diagnostics(
        arch, model.primitives, op_weights),
))
