"""The seam between the engine and a search space: one record of functions, handed to the tasks.

The engine and the tasks never import a space. A space (a folder under darts_jax/spaces, or any code
that builds this record) says how to build its supernet and derived network, how to initialise them
and the architecture parameters, how to derive and (de)serialise a genotype, and which fields of its
model config decide the shapes of the state.

Contracts of the built modules (Flax linen):
- `supernet(model).apply(variables, inputs_Bx..., arch, train=)` -> logits (B, classes);
  in training it may draw from the 'mask' RNG (input augmentation). A supernet that also takes
  `sampler=` (a relaxations.SamplerConfig) and `tau=` draws its op weights from the 'gumbel' RNG;
  the search task refuses a sampled search on a supernet without them. One that takes `aux_skip=`
  (a scalar) adds that weight of each edge's skip connection (DARTS-).
- `network(model, genotype).apply(variables, inputs_Bx..., train=, drop_prob=)` ->
  (logits (B, classes), embedding (B, D)); in training it may draw 'mask' and 'dropout'.
"Logits" are whatever `loss_terms` takes (P2SGrad's cos θ, say); column 1 is the positive class's
score, which evaluation writes to score files.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from darts_jax.engine.losses import weighted_nll_terms


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    name: str
    config_type: type  # the frozen dataclass of the space's model config
    primitives: Sequence[str]  # every candidate operation the space knows
    supernet: Callable[[Any], Any]  # model config -> supernet module
    network: Callable[[Any, Any], Any]  # (model config, genotype) -> derived network module
    init_supernet: Callable[[int, Any], tuple[dict, dict]]  # (seed, model) -> (variables, arch)
    init_network: Callable[[int, Any, Any], dict]  # (seed, model, genotype) -> variables
    # (arch, model) -> genotype; a space whose derivation also takes `op_weights=` (NumPy op logits -> op
    # strengths, relaxations.derivation_weights) can derive Fair DARTS' sigmoid searches.
    derive_genotype: Callable[[Any, Any], Any]
    genotype_to_dict: Callable[[Any], dict]
    genotype_from_dict: Callable[[dict, Any, str], Any]  # (data, model, where) -> genotype, validated
    load_genotype: Callable[[str, Any], Any]  # (name, path or text form, model) -> genotype
    genotype_text: Callable[[Any], str]  # the form users read and paste
    shape_fields: Sequence[str]  # model config fields that change the state's shapes
    # (outputs_BxK, labels_B, class_weights) -> (numerator, denominator) of the batch loss; the global loss
    # is Σ numerator / Σ denominator over devices. Default: class-weighted cross-entropy on logits.
    loss_terms: Callable = weighted_nll_terms
    # Task config fields (flat names, as `engine.config.replace_fields` takes them) that this space's
    # authors set differently from the task defaults, as (name, value) pairs: e.g. (("lr", 5e-5),).
    search_defaults: tuple = ()
    train_defaults: tuple = ()
    # (arch, model[, op_weights=]) -> {name: number} logged every search epoch: what signals a collapse.
    arch_diagnostics: Callable | None = None

    def architecture_differences(self, saved: Any, current: Any) -> list[str]:
        return [f"{name}: checkpoint has {getattr(saved, name)!r}, this run has {getattr(current, name)!r}"
                for name in self.shape_fields if getattr(saved, name) != getattr(current, name)]


_REGISTRY: dict[str, SearchSpace] = {}


def register(space: SearchSpace) -> SearchSpace:
    """Makes `space` known by its name to `get_space` (and so to `--space` and saved configs)."""
    known = _REGISTRY.get(space.name)
    if known is not None and known is not space:
        raise ValueError(f"space {space.name!r} is already registered; choose another name")
    _REGISTRY[space.name] = space
    return space


def get_space(name: str) -> SearchSpace:
    if name not in _REGISTRY:
        raise ValueError(f"space: {name!r} is not known; known spaces are {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
