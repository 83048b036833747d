"""Step-time, compile-time, memory and host-overhead figures of the search and training loops (a command,
not a test).

What is timed is what `search` and `train` run: the pmapped step functions of `compile_search_steps` /
`compile_train_steps` on one device, driven by the loops' own step functions (`search_step_fn`,
`train_step_fn`), which pick the epoch's lr, τ and remedy weights and lay the batch out for the device.
Each pmapped function is lowered and compiled explicitly, so its compile time and XLA's memory
analysis (peak = arguments + outputs + temporaries - donated aliases) are its own.

Two timings per step: `step_ms` waits for every step (median, and the 10th to 90th percentile spread);
`loop_ms` dispatches step n + 1 before fetching step n's metrics, as the run driver does. `host_ms` is
the host's share of a loop step: the time until the step function returns (building the batch and
dispatching), which the device does not wait for while it is under `loop_ms`.
"""
from __future__ import annotations

import dataclasses
import itertools
import time

import jax
import numpy as np

from darts_jax.data.loader import Batch
from darts_jax.engine import parallel
from darts_jax.engine.config import LoopConfig
from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces import get_space
from darts_jax.tasks import common
from darts_jax.tasks.search import SearchConfig, compile_search_steps, init_search_state, search_step_fn
from darts_jax.tasks.train import TrainConfig, compile_train_steps, init_train_state, train_step_fn

MIN_STEPS = 10


def _batches(batch_size: int, num_samples: int, seed: int):
    """An endless iterator over two fixed random batches, as a loader gives them."""
    rng = np.random.default_rng(seed)
    batches = [Batch((0.1 * rng.standard_normal((batch_size, num_samples))).astype(np.float32),
                     rng.permutation(np.arange(batch_size) % 2).astype(np.int32), np.ones(batch_size, bool),
                     ("",) * batch_size, ("",) * batch_size) for _ in range(2)]
    return itertools.cycle(batches)


def _compile(pmapped, *args):
    """(compiled function, compile seconds, peak bytes) of a pmapped step for these arguments."""
    start = time.perf_counter()
    compiled = pmapped.lower(*args).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes)
    return compiled, seconds, int(peak)


def _time_steps(step_fn, state, iterators, steps: int) -> dict:
    """Warm-up, then `steps` blocked steps and `steps` pipelined ones (the driver's order)."""
    for _ in range(2):
        state, metrics = step_fn(state, 0, iterators)
    jax.block_until_ready((state, metrics))
    blocked = []
    for _ in range(steps):
        start = time.perf_counter()
        state, metrics = step_fn(state, 0, iterators)
        jax.block_until_ready((state, metrics))
        blocked.append(time.perf_counter() - start)
    host, pending = [], None
    start = time.perf_counter()
    for _ in range(steps):
        dispatch = time.perf_counter()
        state, metrics = step_fn(state, 0, iterators)
        host.append(time.perf_counter() - dispatch)
        if pending is not None:
            jax.device_get(pending)
        pending = metrics
    jax.device_get(pending)
    loop = (time.perf_counter() - start) / steps
    blocked_ms, host_ms = 1000 * np.asarray(blocked), 1000 * np.median(host)
    step_ms = float(np.median(blocked_ms))
    return {"step_ms": step_ms, "step_p10_ms": float(np.percentile(blocked_ms, 10)),
            "step_p90_ms": float(np.percentile(blocked_ms, 90)), "loop_ms": 1000 * loop, "host_ms": float(host_ms),
            "host_fraction": float(host_ms / step_ms), "steps": steps}


def benchmark_search(space, model, batch_size: int, steps: int = MIN_STEPS, sampler: str = "darts",
                     packed_state: bool | None = None) -> dict:
    """The full search step of `search`: its pmapped α/β and weight steps, on one device, with the state laid
    out as a run lays it out (`LoopConfig.packed_state`). A sampled step draws anew every step (the step
    advances), so its figures are over different architectures."""
    config = SearchConfig(model=model, space=space.name, loop=LoopConfig(epochs=2), warmup_epochs=0,
                          optim=dataclasses.replace(SearchConfig.optim, batch_size=batch_size),
                          relaxation=SamplerConfig(sampler))
    devices = parallel.local_devices(1)
    steps_ = compile_search_steps(space, config, devices)
    packed = parallel.packs_state(devices, packed_state)
    state = parallel.replicate(init_search_state(space, config), devices, packed=packed)
    iterators = {"weights": _batches(batch_size, model.num_samples, 0),
                 "arch": _batches(batch_size, model.num_samples, 1)}
    weight_batch = common.device_batch(iterators["weights"], devices)
    arch_batch = common.device_batch(iterators["arch"], devices)
    lr, tau = config.optim.lr, config.relaxation.tau(0, config.loop.epochs)
    arch_fn, arch_s, arch_peak = _compile(steps_.arch_step, state, arch_batch, weight_batch, lr, 0.0, tau, 0.0)
    weight_fn, weight_s, weight_peak = _compile(steps_.weight_step, state, weight_batch, lr, tau, 0.0)
    figures = _time_steps(search_step_fn(config, arch_fn, weight_fn, devices), state, iterators, steps)
    return {**figures, "compile_s": arch_s + weight_s, "arch_compile_s": arch_s, "weight_compile_s": weight_s,
            "peak_bytes": max(arch_peak, weight_peak), "packed_state": packed}


def benchmark_train(space, model, batch_size: int, genotype: str = "pcdarts-lfcc", steps: int = MIN_STEPS,
                    packed_state: bool | None = None) -> dict:
    """The training step of `train` on the derived network of `genotype`, on one device, with the state laid
    out as a run lays it out."""
    config = TrainConfig(model=model, space=space.name, genotype=genotype,
                         optim=dataclasses.replace(TrainConfig.optim, batch_size=batch_size))
    genotype = space.load_genotype(genotype, model)
    devices = parallel.local_devices(1)
    packed = parallel.packs_state(devices, packed_state)
    state = parallel.replicate(init_train_state(space, config, genotype), devices, packed=packed)
    iterators = {"train": _batches(batch_size, model.num_samples, 0)}
    batch = common.device_batch(iterators["train"], devices)
    train_fn, compile_s, peak = _compile(compile_train_steps(space, config, genotype, devices).train_step, state,
                                         batch, config.optim.lr, 0.0)
    figures = _time_steps(train_step_fn(config, train_fn, devices), state, iterators, steps)
    return {**figures, "compile_s": compile_s, "peak_bytes": peak, "packed_state": packed}


def run_benchmarks(what: str, partial_ks: list[int], batch_size: int, model, space: str = "pcdarts",
                   say=print, samplers: tuple[str, ...] = ("darts",), steps: int = MIN_STEPS,
                   packed_state: bool | None = None) -> dict:
    """{"search": {K: figures}} for each K (with several `samplers`, {"search": {sampler: {K: figures}}}),
    or {"train": figures} (the derived network has no K)."""
    if steps < MIN_STEPS:
        raise ValueError(f"steps (--steps): {steps}; time at least {MIN_STEPS} steps for a median and spread")

    def report(label, r):
        say(f"{label} batch {batch_size} on {jax.devices()[0].platform}: step {r['step_ms']:.1f} ms "
            f"(p10-p90 {r['step_p10_ms']:.1f}-{r['step_p90_ms']:.1f}, {r['steps']} steps), loop {r['loop_ms']:.1f} ms, "
            f"host {r['host_ms']:.2f} ms ({100 * r['host_fraction']:.1f} %), compile {r['compile_s']:.1f} s, "
            f"peak {r['peak_bytes'] / 2**20:.1f} MiB, state {'packed' if r['packed_state'] else 'as leaves'}")
        return r

    space = get_space(space)
    for sampler in samplers:
        SamplerConfig(sampler)  # a misspelt sampler fails before anything compiles
    if what == "train":
        genotype = dict(space.train_defaults).get("genotype", TrainConfig.genotype)
        return {"train": report("train", benchmark_train(space, model, batch_size, genotype, steps, packed_state))}

    def search(sampler, label):
        return {str(k): report(f"search{label} K={k}", benchmark_search(
            space, dataclasses.replace(model, partial_k=k), batch_size, steps, sampler, packed_state))
            for k in partial_ks}

    if tuple(samplers) == ("darts",):
        return {"search": search("darts", "")}
    return {"search": {sampler: search(sampler, f" {sampler}") for sampler in samplers}}
