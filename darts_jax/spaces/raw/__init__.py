"""Raw PC-DARTS (Ge, Patino, Todisco, Evans, ASVspoof 2021 Workshop): PC-DARTS on raw waveforms.

`SPACE` is its record for the engine, registered as "raw". Modules: `config` (model config,
primitives), `frontend` (sinc bank, `sinc_filters`, filter masking, plain conv), `operations` (1-D
ops), `head` (PyTorch GRU, P2SGrad and its loss), `skeleton`, `supernet`, `network`, `genotype`.
The search and training defaults are the authors' (spec §5.3).
"""
from __future__ import annotations

from darts_jax.engine.space import SearchSpace, register
from darts_jax.relaxations import softmax_np
from darts_jax.spaces.pcdarts2d import genotype as cell_genotypes
from darts_jax.spaces.raw import genotype as genotype_lib
from darts_jax.spaces.raw.config import PRIMITIVES, SHAPE_FIELDS, ModelConfig
from darts_jax.spaces.raw.frontend import sinc_filters
from darts_jax.spaces.raw.head import p2sgrad_terms
from darts_jax.spaces.raw.network import DerivedNetwork, init_network
from darts_jax.spaces.raw.supernet import SearchNetwork, init_supernet

SEARCH_DEFAULTS = (("batch_size", 14), ("epochs", 30), ("warmup_epochs", 10), ("lr", 5e-5), ("lr_min", 5e-5),
                   ("weight_decay", 3e-4), ("arch_lr", 6e-4), ("arch_betas", (0.5, 0.999)),
                   ("arch_weight_decay", 1e-3))
TRAIN_DEFAULTS = (("batch_size", 32), ("epochs", 100), ("lr", 5e-5), ("lr_min", 2e-5), ("weight_decay", 3e-4),
                  ("drop_path", 0.0), ("genotype", "raw-pcdarts-mel"))

SPACE = register(SearchSpace(
    name="raw",
    config_type=ModelConfig,
    primitives=PRIMITIVES,
    supernet=SearchNetwork,
    network=DerivedNetwork,
    init_supernet=init_supernet,
    init_network=init_network,
    derive_genotype=lambda arch, model, op_weights=softmax_np: cell_genotypes.derive_genotype(
        arch, model.primitives, op_weights=op_weights),
    genotype_to_dict=cell_genotypes.Genotype.to_dict,
    genotype_from_dict=lambda data, model, where: cell_genotypes.Genotype.from_json(data, model.primitives, where),
    load_genotype=lambda spec, model: genotype_lib.load_genotype(spec, model.primitives),
    genotype_text=cell_genotypes.Genotype.to_string,
    shape_fields=SHAPE_FIELDS,
    loss_terms=p2sgrad_terms,
    search_defaults=SEARCH_DEFAULTS,
    train_defaults=TRAIN_DEFAULTS,
))

__all__ = ["SPACE", "ModelConfig", "PRIMITIVES", "sinc_filters"]
