"""The training task: a derived network from scratch (or from another run's weights), drop path ramping
0 -> config.drop_path over the epochs. Defaults are the authors' (spec §5.2)."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

import numpy as np

from darts_jax.engine import driver, parallel
from darts_jax.engine.config import LoopConfig, OptimConfig
from darts_jax.engine.optim import cosine_lr, weight_optimizer
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.space import SearchSpace
from darts_jax.engine.state import TrainState, first_step, run_key_data, step_key
from darts_jax.engine.steps import global_loss, gradient_step
from darts_jax.tasks import common, evaluate
from darts_jax.tasks.common import DROPOUT, MASK_WEIGHTS


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model: Any  # the space's model config
    space: str = "pcdarts"
    genotype: str = "pcdarts-lfcc"  # a known name, a genotype JSON file or the text form
    loop: LoopConfig = LoopConfig(epochs=100)
    optim: OptimConfig = OptimConfig(batch_size=128, lr=1e-3, lr_min=1e-4)
    drop_path: float = 0.2


def init_train_state(space: SearchSpace, config: TrainConfig, genotype) -> TrainState:
    variables = space.init_network(config.loop.seed, config.model, genotype)
    return TrainState(step=first_step(), params=variables["params"], batch_stats=variables["batch_stats"],
                      opt=weight_optimizer(config.optim).init(variables["params"]), key=run_key_data(config.loop.seed))


def train_step(state: TrainState, batch, lr, drop_prob, *, space: SearchSpace, config: TrainConfig, genotype):
    """One weight update of a derived network, drop path at `drop_prob` (a scalar, so no recompiles)."""
    net = space.network(config.model, genotype)
    rngs = {"mask": step_key(state, MASK_WEIGHTS), "dropout": step_key(state, DROPOUT)}

    def loss_fn(params):
        (logits, _), updates = net.apply({"params": params, "batch_stats": state.batch_stats}, batch["inputs"],
                                         train=True, drop_prob=drop_prob, mutable=["batch_stats"], rngs=rngs)
        loss = global_loss(space.loss_terms, logits, batch["label"], config.optim.class_weights)
        return loss, (updates["batch_stats"], logits)

    params, opt, batch_stats, metrics = gradient_step(loss_fn, state.params, state.opt, weight_optimizer(config.optim),
                                                      lr, batch["label"])
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt=opt), metrics


@dataclasses.dataclass(frozen=True)
class TrainSteps:
    train_step: Callable  # (state, batch, lr, drop_prob) -> (state, metrics)
    eval_step: Callable  # (params, batch_stats, None, batch) -> outputs
    devices: list


def compile_train_steps(space: SearchSpace, config: TrainConfig, genotype, devices) -> TrainSteps:
    step = parallel.bind(train_step, space=space, config=config, genotype=genotype)
    return TrainSteps(train_step=parallel.pmap(step, devices, (0, 0, None, None)),
                      eval_step=evaluate.compile_eval_step(space, config.model, genotype, devices),
                      devices=devices)


def train_step_fn(config: TrainConfig, train_fn, devices) -> Callable:
    """The driver's step: one weight update at the epoch's lr and drop-path probability."""
    def step_fn(device_state, epoch, iterators):
        lr = cosine_lr(epoch, config.loop.epochs, config.optim.lr, config.optim.lr_min)
        drop_prob = config.drop_path * epoch / config.loop.epochs
        device_state, metrics = train_fn(device_state, common.device_batch(iterators["train"], devices), lr, drop_prob)
        return device_state, {**metrics, "lr": np.full(len(devices), lr)}

    return step_fn


def train(space: SearchSpace, config: TrainConfig, genotype, train_loader, workdir, *, dev_loader=None,
          dev_metrics=None, devices=None, restart: bool = False, quiet: bool = False) -> common.TaskResult:
    """Trains `genotype`'s network on `train_loader`; with `dev_loader`, scores it at each epoch end."""
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.optim.batch_size)
    log = RunLog(workdir, quiet)
    compiled = compile_train_steps(space, config, genotype, devices)
    step_fn = train_step_fn(config, compiled.train_step, devices)

    def write_genotype():
        # Only once the checkpoint has accepted the genotype, so a refused resume leaves the file alone.
        (Path(workdir) / "genotype.json").write_text(common.genotype_json(space, genotype) + "\n")

    hooks = driver.Hooks(
        check_meta=common.architecture_check(space, config.model, genotype),
        after_restore=write_genotype,
        on_epoch_end=common.dev_monitor(compiled.eval_step, dev_loader, dev_metrics, devices),
        meta=lambda state: {"genotype": space.genotype_to_dict(genotype)})
    result = driver.run(loop=config.loop, config=config, workdir=workdir,
                        state=init_train_state(space, config, genotype), loaders={"train": train_loader},
                        step_fn=step_fn, devices=devices, log=log,
                        epoch_steps=driver.steps_per_epoch(config.loop, train_loader), hooks=hooks, restart=restart)
    log.close()
    return common.TaskResult(result.state, result.step, result.interrupted, genotype)
