"""Run state as explicit pytrees: a bi-level search state and a single-level training state.

Keys are stored as raw key data (uint32) so a state is a plain array tree that any checkpointer
saves; per-step keys are `fold_in(key, step)`, which makes a resumed run draw what the original would.
"""
from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct


class SearchState(struct.PyTreeNode):
    """Network weights and architecture parameters, each with its own optimiser state."""
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


def run_key_data(seed: int) -> jax.Array:
    """The run's key, distinct from the initialisation's stream of the same seed."""
    return jax.random.key_data(jax.random.fold_in(jax.random.key(seed), 1))


def first_step() -> jax.Array:
    return jnp.zeros((), jnp.int32)


def step_key(state, salt: int):
    """The key for one purpose (mask, dropout, ...) of the current step."""
    return jax.random.fold_in(jax.random.fold_in(jax.random.wrap_key_data(state.key), state.step), salt)


def count_params(tree) -> int:
    """Number of values in a pytree of arrays or shapes."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))
