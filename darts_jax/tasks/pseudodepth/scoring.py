"""Per-image outputs of a network over whole arrays, in eval mode, through the engine's one pmap."""
from __future__ import annotations

from typing import Callable

import jax
import numpy as np

from darts_jax.tasks.arrays import fixed_batches
from darts_jax.engine import parallel

EVAL_BATCH = 128


def compile_outputs(outputs_fn: Callable, devices, **static) -> Callable:
    """(params, batch_stats, batch) -> per-image outputs, mapped over `devices`."""
    return parallel.pmap(parallel.bind(outputs_fn, **static), devices, (0, 0, 0), donate_state=False)


def outputs_over(compiled: Callable, variables: dict, arrays: dict, devices) -> dict[str, np.ndarray]:
    """Every row's outputs, in row order (the padding rows of the last batch dropped)."""
    params, batch_stats = parallel.replicate((variables["params"], variables["batch_stats"]), devices)
    batch_size = EVAL_BATCH - EVAL_BATCH % len(devices) or len(devices)
    inputs = {key: arrays[key] for key in ("image", "depth")}
    collected: dict[str, list] = {}
    for batch, count in fixed_batches(inputs, batch_size):
        out = jax.device_get(compiled(params, batch_stats, parallel.shard_batch(batch, len(devices))))
        for key, value in out.items():
            collected.setdefault(key, []).append(np.asarray(value).reshape(-1)[:count])
    return {key: np.concatenate(values) for key, values in collected.items()}
