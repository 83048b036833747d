"""Run state as explicit pytrees, and their initialisation from a config and a seed.

Keys are stored as raw key data (uint32) so a state is a plain array tree that any checkpointer
saves; per-step keys are `fold_in(key, step)`, which makes a resumed run draw what the original would.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from darts_jax.config import SearchConfig, TrainConfig
from darts_jax.genotype import Genotype
from darts_jax.network import init_network
from darts_jax.optim import coupled_adam
from darts_jax.search_space import init_supernet


class SearchState(struct.PyTreeNode):
    step: jax.Array
    params: Any
    batch_stats: Any
    arch: Any
    opt_w: Any
    opt_a: Any
    key: jax.Array


class TrainState(struct.PyTreeNode):
    step: jax.Array
    params: Any
    batch_stats: Any
    opt: Any
    key: jax.Array


def weight_optimizer(config: SearchConfig | TrainConfig):
    return coupled_adam(config.weight_decay)


def arch_optimizer(config: SearchConfig):
    return coupled_adam(config.arch_weight_decay, *config.arch_betas)


def step_key(state, salt: int):
    """The key for one purpose (mask, dropout, ...) of the current step."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step), salt)


def init_search_state(config: SearchConfig) -> SearchState:
    run_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    variables, arch = init_supernet(config.seed, config.model)
    return SearchState(
        step=jnp.zeros((), jnp.int32), params=variables["params"], batch_stats=variables["batch_stats"],
        arch=arch, opt_w=weight_optimizer(config).init(variables["params"]),
        opt_a=arch_optimizer(config).init(arch), key=jax.random.key_data(run_key))


def init_train_state(config: TrainConfig, genotype: Genotype) -> TrainState:
    run_key = jax.random.fold_in(jax.random.key(config.seed), 1)
    variables = init_network(config.seed, config.model, genotype)
    return TrainState(
        step=jnp.zeros((), jnp.int32), params=variables["params"], batch_stats=variables["batch_stats"],
        opt=weight_optimizer(config).init(variables["params"]), key=jax.random.key_data(run_key))
