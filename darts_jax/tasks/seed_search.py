"""Several seeds' searches as one program: the search state stacked over seeds, the steps vmapped over it.

N small searches compiled once and run side by side fill a device that one small search leaves idle,
where N sequential runs pay N compiles and N times the dispatch. Each seed keeps everything a
single-seed run has of its own (initialisation, data order, masks, optimiser states), so seed s of a
stacked search derives what `search.search` with seed s derives (tests compare them to 1e-6). The step
counter is shared (every seed takes the same steps); everything else has a leading seed axis.

Left to the per-seed runs that follow (training each genotype): dev scoring and the Hessian monitor
of `search.search`, which would put N evaluations in every epoch. Memory grows N-fold, so this suits
networks that are small next to the device; `sweep` runs the seeds one after another otherwise.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Sequence

import jax
import numpy as np

from darts_jax.engine import config as config_lib
from darts_jax.engine import driver, parallel
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.space import SearchSpace
from darts_jax.engine.state import SearchState
from darts_jax.tasks import common, evaluate
from darts_jax.tasks.search import (SearchConfig, arch_figures, arch_step, check_sampler_support, derive_genotype,
                                    init_search_state, search_step_fn, weight_step)

# vmap's axes of a stacked SearchState: the step counter is shared, every other leaf has a seed axis.
SEED_AXES = SearchState(step=None, params=0, batch_stats=0, arch=0, opt_w=0, opt_a=0, key=0)


@dataclasses.dataclass(frozen=True)
class SeedSearchConfig:
    search: SearchConfig
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)

    def __post_init__(self):
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise ValueError(f"seeds: give distinct non-negative seeds, got {self.seeds}")
        if self.search.unrolled:
            raise ValueError("unrolled: the stacked search is first order; search second-order seeds one by one")
        if self.search.early_stop_ratio:
            raise ValueError("early_stop_ratio: the stacked search has no Hessian monitor to stop on; search "
                             "early-stopped seeds one by one (`darts-jax search --seed S`)")


class StackedLoaders:
    """One loader per seed, read in lock step: each item is a tuple of the seeds' batches."""

    def __init__(self, loaders: Sequence[Any]):
        counts = {getattr(loader, "steps_per_epoch", None) for loader in loaders}
        if len(counts) != 1:
            raise ValueError(f"the seeds' loaders give different epoch lengths {sorted(map(str, counts))}")
        self.loaders = list(loaders)
        self.steps_per_epoch = counts.pop()

    def __iter__(self):
        iterators = [iter(loader) for loader in self.loaders]
        while True:
            yield tuple(next(iterator) for iterator in iterators)

    def state(self) -> dict:
        return {str(i): loader.state() for i, loader in enumerate(self.loaders)}

    def restore(self, state: dict) -> None:
        for i, loader in enumerate(self.loaders):
            loader.restore(state[str(i)])


def stacked_initial_state(space: SearchSpace, config: SeedSearchConfig) -> SearchState:
    states = [init_search_state(space, config_lib.with_fields(config.search, seed=seed)) for seed in config.seeds]
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *states)
    return stacked.replace(step=states[0].step)


def seed_state(stacked: SearchState, index: int) -> SearchState:
    """The single-seed state of the seed at `index` (host arrays)."""
    return jax.tree.map(lambda leaf: leaf[index], stacked.replace(step=None)).replace(step=stacked.step)


def compile_seed_steps(space: SearchSpace, config: SearchConfig, devices):
    static = dict(space=space, config=config)
    # Every seed draws its own Gumbel noise from its own key; the lr, β-DARTS weight, τ and DARTS-' β are shared.
    arch = jax.vmap(parallel.bind(arch_step, **static), in_axes=(SEED_AXES, 0, 0, None, None, None, None),
                    out_axes=(SEED_AXES, 0))
    weight = jax.vmap(parallel.bind(weight_step, **static), in_axes=(SEED_AXES, 0, None, None, None),
                      out_axes=(SEED_AXES, 0))
    return (parallel.pmap(arch, devices, (0, 0, 0, None, None, None, None)),
            parallel.pmap(weight, devices, (0, 0, None, None, None)))


def _stacked_device_batch(iterator, devices) -> dict:
    """(devices, seeds, per-device batch, ...) arrays from one batch per seed."""
    per_seed = [parallel.shard_batch(evaluate.batch_arrays(batch), len(devices)) for batch in next(iterator)]
    return {name: np.stack([batch[name] for batch in per_seed], axis=1) for name in per_seed[0]}


def _per_seed_metrics(metrics: dict, seeds) -> dict:
    """Seed means of every step metric (the progress line), and each seed's loss."""
    out = {name: value.mean(axis=1) for name, value in metrics.items()}
    out.update({f"loss_seed{seed}": metrics["loss"][:, i] for i, seed in enumerate(seeds)})
    return out


def search_seeds(space: SearchSpace, config: SeedSearchConfig, weight_loaders, arch_loaders, workdir, *,
                 devices=None, restart: bool = False, quiet: bool = False) -> list[common.TaskResult]:
    """Searches every seed of `config.seeds` at once; `weight_loaders[i]` / `arch_loaders[i]` are seed i's.

    Writes `seed-<seed>/genotype.json` under `workdir` for each seed once the search finishes, and
    returns one TaskResult per seed (in `config.seeds` order).
    """
    search_config, seeds = config.search, config.seeds
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(search_config.optim.batch_size)
    check_sampler_support(space, search_config)
    log = RunLog(workdir, quiet)
    arch_fn, weight_fn = compile_seed_steps(space, search_config, devices)
    weights, archs = StackedLoaders(weight_loaders), StackedLoaders(arch_loaders)
    epoch_steps = driver.steps_per_epoch(search_config.loop, weights)

    step_fn = search_step_fn(search_config, arch_fn, weight_fn, devices, _stacked_device_batch,
                             lambda metrics: _per_seed_metrics(metrics, seeds))

    def genotypes(state) -> dict:
        return {str(seed): derive_genotype(space, search_config, seed_state(state, i).arch)
                for i, seed in enumerate(seeds)}

    def on_epoch_start(epoch, state):
        found = genotypes(state)
        for seed, genotype in found.items():
            log.say(f"epoch {epoch} seed {seed} genotype: {space.genotype_text(genotype)}")
        log.scalars(int(state.step), {"epoch": epoch, "genotypes": {
            seed: space.genotype_to_dict(genotype) for seed, genotype in found.items()}}, stream="genotypes")

    def on_epoch_end(epoch, state):
        return {f"{name}_seed{seed}": value for i, seed in enumerate(seeds) for name, value in
                arch_figures(space, search_config, seed_state(state, i).arch).items()}

    hooks = driver.Hooks(
        check_meta=common.architecture_check(space, search_config.model),
        on_epoch_start=on_epoch_start, on_epoch_end=on_epoch_end,
        meta=lambda state: {"genotypes": {seed: space.genotype_to_dict(g) for seed, g in genotypes(state).items()}})
    result = driver.run(loop=search_config.loop, config=config, workdir=workdir,
                        state=stacked_initial_state(space, config), loaders={"weights": weights, "arch": archs},
                        step_fn=step_fn, devices=devices, log=log, epoch_steps=epoch_steps, hooks=hooks,
                        restart=restart)
    results = []
    for i, seed in enumerate(seeds):
        state = seed_state(result.state, i)
        genotype = derive_genotype(space, search_config, state.arch)
        if log.writes and not result.interrupted:
            seed_dir = Path(workdir) / f"seed-{seed}"
            seed_dir.mkdir(exist_ok=True)
            (seed_dir / "genotype.json").write_text(common.genotype_json(space, genotype) + "\n")
        results.append(common.TaskResult(state, result.step, result.interrupted, genotype))
    log.say(("stopped" if result.interrupted else "finished") + f" after step {result.step}: " + "; ".join(
        f"seed {seed} {space.genotype_text(r.genotype)}" for seed, r in zip(seeds, results)))
    log.close()
    return results
