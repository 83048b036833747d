"""The audio-visual fusion space of STGS-BMNAS (Reddy PN et al., IJCB 2024; BM-NAS): which frozen backbone
taps to fuse, and how, inside two-level fusion cells (spec related_systems §2).

`SPACE` is its record for the engine, registered as "fusion". Modules: `config`, `layers` (pooling,
reshape, fusion ops, node output, classifier), `supernet`, `genotype` (v3 derivation, text and JSON forms),
`network` (the derived network), `backbones` (the pluggable frozen audio and video networks).
Class weights (1, 4) balance SynthAV's one real category against its four fake ones.
"""
from __future__ import annotations

from darts_jax.engine.space import SearchSpace, register
from darts_jax.spaces.fusion import genotype as genotype_lib
from darts_jax.spaces.fusion.config import EDGE_PRIMITIVES, FUSION_OPS, SHAPE_FIELDS, FusionConfig
from darts_jax.spaces.fusion.network import FusionNetwork, init_network
from darts_jax.spaces.fusion.supernet import FusionSupernet, init_supernet

SEARCH_DEFAULTS = (("batch_size", 16), ("epochs", 20), ("warmup_epochs", 0), ("lr", 1e-3), ("lr_min", 1e-6),
                   ("weight_decay", 3e-4), ("arch_lr", 3e-4), ("arch_betas", (0.5, 0.999)),
                   ("arch_weight_decay", 1e-3), ("class_weights", (1.0, 4.0)), ("hessian_every", 0),
                   ("sampler", "gumbel_st_mc"))  # resolves to the paper's best: M = 15, constant λ = 10
TRAIN_DEFAULTS = (("batch_size", 16), ("epochs", 30), ("lr", 3e-4), ("lr_min", 1e-6), ("weight_decay", 3e-4),
                  ("class_weights", (1.0, 4.0)), ("drop_path", 0.0), ("genotype", ""))

SPACE = register(SearchSpace(
    name="fusion",
    config_type=FusionConfig,
    primitives=EDGE_PRIMITIVES + FUSION_OPS,
    supernet=FusionSupernet,
    network=FusionNetwork,
    init_supernet=init_supernet,
    init_network=init_network,
    derive_genotype=genotype_lib.derive_genotype,
    genotype_to_dict=genotype_lib.genotype_to_dict,
    genotype_from_dict=genotype_lib.genotype_from_dict,
    load_genotype=genotype_lib.load_genotype,
    genotype_text=genotype_lib.genotype_text,
    shape_fields=SHAPE_FIELDS,
    search_defaults=SEARCH_DEFAULTS,
    train_defaults=TRAIN_DEFAULTS,
))

__all__ = ["SPACE", "FusionConfig"]
