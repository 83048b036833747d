"""Data parallelism: the one place where step functions are compiled, with `jax.pmap`.

Each step is written once for one device (darts_jax.steps) and mapped over the local devices with a
named axis; state is replicated (leading device axis) and batches are split along it. Across hosts,
every process feeds its own local devices with its own data shard and the collectives span all devices.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Callable

import jax
import numpy as np

from darts_jax import steps
from darts_jax.config import SearchConfig, TrainConfig
from darts_jax.genotype import Genotype

AXIS = "devices"


def maybe_initialize_distributed() -> None:
    """Multi-host runs: JAX's own discovery (TPU pods, SLURM, or JAX_COORDINATOR_ADDRESS et al.)."""
    if os.environ.get("DARTS_JAX_DISTRIBUTED") == "1":
        jax.distributed.initialize()


def local_devices(count: int | None = None) -> list:
    devices = jax.local_devices()
    if count is not None:
        if not 1 <= count <= len(devices):
            raise ValueError(f"devices: asked for {count}, but this process has {len(devices)}")
        devices = devices[:count]
    return devices


def check_global_batch(batch_size: int, field: str = "batch_size") -> int:
    """The per-host batch, after checking the global batch divides over every device."""
    if batch_size % jax.device_count():
        raise ValueError(f"{field}: {batch_size} does not divide by the {jax.device_count()} devices; "
                         f"use a multiple of {jax.device_count()}")
    return batch_size // jax.process_count()


def replicate(tree, devices):
    """One copy per device, laid out exactly as pmap lays out its outputs.

    pmap's compile cache keys on input sharding, whose mesh carries the axis name: a state replicated
    any other way would be traced and compiled a second time when the step's own output is fed back.
    """
    if not jax.tree.leaves(tree):
        return tree
    stacked = jax.tree.map(lambda x: np.broadcast_to(x, (len(devices),) + np.shape(x)), jax.device_get(tree))
    return jax.pmap(lambda t: t, axis_name=AXIS, devices=devices)(stacked)


def unreplicate(tree):
    """The first device's copy, fetched to the host."""
    return jax.device_get(jax.tree.map(lambda x: x[0], tree))


def shard_batch(batch, num_devices: int) -> dict:
    """A loader Batch as arrays of shape (devices, per-device batch, ...)."""
    size = len(batch.label_B)
    if size % num_devices:
        raise ValueError(f"batch of {size} does not divide over {num_devices} devices")
    fields = {"wave": batch.wave_BxS, "label": batch.label_B, "valid": batch.valid_B}
    return {k: np.asarray(v).reshape(num_devices, size // num_devices, *np.shape(v)[1:]) for k, v in fields.items()}


def _pmap(fn, devices, in_axes, donate: bool = True, **static):
    return jax.pmap(functools.partial(fn, axis_name=AXIS, **static), axis_name=AXIS, in_axes=in_axes,
                    devices=devices, donate_argnums=(0,) if donate else ())


@dataclasses.dataclass(frozen=True)
class SearchSteps:
    arch_step: Callable  # (state, arch_batch, weight_batch, lr) -> (state, metrics)
    weight_step: Callable  # (state, weight_batch, lr) -> (state, metrics)
    eval_step: Callable  # (params, batch_stats, arch, batch) -> outputs
    devices: list


@dataclasses.dataclass(frozen=True)
class TrainSteps:
    train_step: Callable  # (state, batch, lr, drop_prob) -> (state, metrics)
    eval_step: Callable  # (params, batch_stats, None, batch) -> outputs
    devices: list


def compile_search_steps(config: SearchConfig, devices) -> SearchSteps:
    return SearchSteps(
        arch_step=_pmap(steps.arch_step, devices, (0, 0, 0, None), config=config),
        weight_step=_pmap(steps.weight_step, devices, (0, 0, None), config=config),
        eval_step=compile_eval_step(config.model, None, devices),
        devices=devices)


def compile_train_steps(config: TrainConfig, genotype: Genotype, devices) -> TrainSteps:
    return TrainSteps(
        train_step=_pmap(steps.train_step, devices, (0, 0, None, None), config=config, genotype=genotype),
        eval_step=compile_eval_step(config.model, genotype, devices),
        devices=devices)


def compile_eval_step(model, genotype, devices):
    # Evaluation needs no collectives (running statistics); the axis name keeps input shardings alike.
    return jax.pmap(functools.partial(steps.eval_step, model=model, genotype=genotype), axis_name=AXIS,
                    in_axes=(0, 0, 0, 0), devices=devices)
