"""Data parallelism: the one place where step functions are compiled, with `jax.pmap`.

Each step is written once for one device (darts_jax.tasks) and mapped over the local devices with a
named axis; state is replicated (leading device axis) and batches are split along it. Across hosts,
every process feeds its own local devices with its own data shard and the collectives span all devices.
"""
from __future__ import annotations

import functools
import os
import warnings
from typing import Callable

import jax
import numpy as np

from darts_jax.engine import collectives, packing

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


def replicate(tree, devices, packed: bool = False):
    """One copy per device, laid out exactly as pmap lays out its outputs; with `packed`, as a
    `packing.Packed` of a few buffers, which the steps of `pmap` unpack (what a run's state is).

    pmap's compile cache keys on input sharding, whose mesh carries the axis name: a state replicated
    any other way would be traced and compiled a second time when the step's own output is fed back.
    """
    if not jax.tree.leaves(tree):
        return tree
    host = jax.device_get(tree)
    if packed:
        host = packing.pack(host, np)
    stacked = jax.tree.map(lambda x: np.broadcast_to(x, (len(devices),) + np.shape(x)), host)
    return jax.pmap(lambda t: t, axis_name=AXIS, devices=_mapped_devices(devices))(stacked)


def packs_state(devices, choice: bool | None) -> bool:
    """Whether a run's state is packed between steps: `choice`, or when None, off CPU (LoopConfig says why)."""
    return choice if choice is not None else devices[0].platform != "cpu"


def unreplicate(tree):
    """The first local device's copy, fetched to the host (unpacked if it was packed).

    Read from that device's own buffer: indexing the replicated arrays (`x[0]`) compiles and runs a slice
    per leaf shape (in a tiny raw search, its 4 calls took 1.7 s of 28 s that way).
    """
    host = jax.tree.map(lambda x: x[0], jax.device_get(jax.tree.map(lambda x: x.addressable_data(0), tree)))
    return packing.unpack(host) if isinstance(host, packing.Packed) else host


def shard_batch(arrays: dict, num_devices: int) -> dict:
    """Host arrays of shape (batch, ...) as (devices, per-device batch, ...)."""
    size = len(next(iter(arrays.values())))
    if size % num_devices:
        raise ValueError(f"batch of {size} does not divide over {num_devices} devices")
    return {k: np.asarray(v).reshape(num_devices, size // num_devices, *np.shape(v)[1:]) for k, v in arrays.items()}


def bind(step: Callable, **static) -> Callable:
    """`step` with its static (keyword-only) arguments fixed, keeping its name for traces and profiles."""
    return functools.update_wrapper(functools.partial(step, **static), step)


def warn_of_cpu_all_reduce(devices) -> None:
    """A training run's steps sum over its devices: on several CPU devices, XLA can stall that sum."""
    if len(devices) > 1 and devices[0].platform == "cpu":
        warnings.warn(f"this run's steps sum over {len(devices)} CPU devices: XLA's CPU runtime can leave such an "
                      f"all-reduce waiting and abort the process after 40 s (exit 134); on CPU, one device is safe "
                      f"(see the README, raw space)", RuntimeWarning, stacklevel=3)


def pmap(fn: Callable, devices, in_axes, donate_state: bool = True) -> Callable:
    """`fn` (written for one device) mapped over `devices`; its batch sums become global sums.

    The axis is given to the traced code through `collectives.mapped_over`, never as an argument,
    so layers and steps need no axis field. With `donate_state`, argument 0 (the state) is donated.
    A state given packed (`replicate(..., packed=True)`) is unpacked for `fn`, which returns
    (state, ...), and its new state is packed in the same layout.
    """
    def mapped(*args):
        with collectives.mapped_over(AXIS):
            if not isinstance(args[0], packing.Packed):
                return fn(*args)
            state, *rest = fn(packing.unpack(args[0]), *args[1:])
            return (packing.pack_as(args[0].layout, state), *rest)

    functools.update_wrapper(mapped, fn)
    return jax.pmap(mapped, axis_name=AXIS, in_axes=in_axes, devices=_mapped_devices(devices),
                    donate_argnums=(0,) if donate_state else ())


def _mapped_devices(devices):
    """What pmap maps over: `devices` in one process; across processes every device of every process.

    pmap restricted to a process's own devices would run one independent program per host, each with
    its own α/β; across processes, each one feeds its local devices and the collectives span all.
    """
    if jax.process_count() == 1:
        return devices
    if list(devices) != jax.local_devices():
        raise ValueError("devices: a run over several processes uses every local device of each process")
    return None
