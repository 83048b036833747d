"""Step-time, compile-time and memory figures of the search and training steps (a command, not a test).

Each step function is compiled for one device with `jit` (the same function pmap maps), so XLA's
compiled memory analysis is available: peak = arguments + outputs + temporaries - donated aliases.
Search steps can be timed under any architecture sampler (`--sampler darts,gdas`): a GDAS step computes
only the ops some edge sampled, at the τ of the schedule's first epoch.
"""
from __future__ import annotations

import dataclasses
import statistics
import time

import jax
import numpy as np

from darts_jax.engine.parallel import bind
from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces import get_space
from darts_jax.tasks.search import SearchConfig, arch_step, init_search_state, weight_step
from darts_jax.tasks.train import TrainConfig, init_train_state, train_step


def _batch(batch_size: int, num_samples: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {"inputs": (0.1 * rng.standard_normal((batch_size, num_samples))).astype(np.float32),
            "label": rng.integers(0, 2, batch_size).astype(np.int32)}


def _compile(fn, *args) -> tuple:
    start = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=0).lower(*args).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    peak = (memory.argument_size_in_bytes + memory.output_size_in_bytes + memory.temp_size_in_bytes
            - memory.alias_size_in_bytes)
    return compiled, seconds, int(peak)


def _median_ms(run, state, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        state = run(state)
        jax.block_until_ready(state)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def benchmark_search(space, model, batch_size: int, repeats: int = 5, sampler: str = "darts") -> dict:
    """One full search step: the α/β step and the weight step, each compiled on its own. A sampled step
    draws anew each repeat (the step advances), so its median is over different architectures."""
    config = SearchConfig(model=model, space=space.name, optim=dataclasses.replace(SearchConfig.optim,
                                                                                   batch_size=batch_size),
                          relaxation=SamplerConfig(sampler))
    state = jax.device_put(init_search_state(space, config))
    weight_batch, arch_batch = _batch(batch_size, model.num_samples, 0), _batch(batch_size, model.num_samples, 1)
    lr, tau = np.float32(config.optim.lr), np.float32(config.relaxation.tau(0, config.loop.epochs))
    arch_fn = bind(arch_step, space=space, config=config)
    weight_fn = bind(weight_step, space=space, config=config)
    compiled_arch, arch_s, arch_peak = _compile(arch_fn, state, arch_batch, weight_batch, lr, np.float32(0), tau)
    compiled_weight, weight_s, weight_peak = _compile(weight_fn, state, weight_batch, lr, tau)

    def run(state):
        state, _ = compiled_arch(state, arch_batch, weight_batch, lr, np.float32(0), tau)
        return compiled_weight(state, weight_batch, lr, tau)[0]

    state = run(state)  # warm-up
    return {"step_ms": _median_ms(run, state, repeats), "compile_s": arch_s + weight_s,
            "peak_bytes": max(arch_peak, weight_peak)}


def benchmark_train(space, model, batch_size: int, genotype: str = "pcdarts-lfcc", repeats: int = 5) -> dict:
    config = TrainConfig(model=model, space=space.name, genotype=genotype,
                         optim=dataclasses.replace(TrainConfig.optim, batch_size=batch_size))
    genotype = space.load_genotype(genotype, model)
    state = jax.device_put(init_train_state(space, config, genotype))
    batch = _batch(batch_size, model.num_samples, 0)
    lr, drop = np.float32(config.optim.lr), np.float32(0.1)
    step, compile_s, peak = _compile(bind(train_step, space=space, config=config, genotype=genotype), state,
                                     batch, lr, drop)

    def run(state):
        return step(state, batch, lr, drop)[0]

    state = run(state)
    return {"step_ms": _median_ms(run, state, repeats), "compile_s": compile_s, "peak_bytes": peak}


def run_benchmarks(what: str, partial_ks: list[int], batch_size: int, model, space: str = "pcdarts",
                   say=print, samplers: tuple[str, ...] = ("darts",), repeats: int = 5) -> dict:
    """{"search": {K: figures}} for each K (with several `samplers`, {"search": {sampler: {K: figures}}}),
    or {"train": figures} (the derived network has no K)."""
    def report(label, r):
        say(f"{label} batch {batch_size} on {jax.devices()[0].platform}: step {r['step_ms']:.1f} ms, "
            f"compile {r['compile_s']:.1f} s, peak {r['peak_bytes'] / 2**20:.1f} MiB")
        return r

    space = get_space(space)
    for sampler in samplers:
        SamplerConfig(sampler)  # a misspelt sampler fails before anything compiles
    if what == "train":
        genotype = dict(space.train_defaults).get("genotype", TrainConfig.genotype)
        return {"train": report("train", benchmark_train(space, model, batch_size, genotype, repeats))}

    def search(sampler, label):
        return {str(k): report(f"search{label} K={k}", benchmark_search(space, dataclasses.replace(model, partial_k=k),
                                                                        batch_size, repeats, sampler))
                for k in partial_ks}

    if tuple(samplers) == ("darts",):
        return {"search": search("darts", "")}
    return {"search": {sampler: search(sampler, f" {sampler}") for sampler in samplers}}
