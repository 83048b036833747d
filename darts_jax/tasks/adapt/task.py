"""The adaptation task on the engine driver: resumable, checkpointed, its config in config.json.

`adapt` is the source-free entry point: it takes the teacher and the *target* data only (a test checks
its signature). The student starts from the teacher's weights; the teacher's prototypes are computed
once, before the first step, in eval mode and without augmentation, and written to prototypes.json.
The source model itself is trained with the same step and the FT loss (`train_source_model`).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np

from darts_jax.engine import driver, parallel
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.state import TrainState, first_step, run_key_data
from darts_jax.tasks.adapt.config import AdaptConfig
from darts_jax.tasks.adapt.step import (Backbone, compile_adapt_step, compile_eval_forward, predict,
                                        prototypes_from_outputs, sgd)
from darts_jax.tasks.arrays import ArrayLoader


@dataclasses.dataclass
class AdaptResult:
    variables: dict  # the student's (or trained model's) params and batch_stats, on the host
    step: int
    interrupted: bool


def check_split(data: dict, where: str) -> None:
    """A split is {'inputs': (N, ...), 'label': (N,) of 0/1}; anything else is refused by name."""
    if not isinstance(data, dict) or set(data) != {"inputs", "label"}:
        raise ValueError(f"{where}: expected a dict with 'inputs' and 'label', got "
                         f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
    labels = np.asarray(data["label"])
    if len(data["inputs"]) != len(labels):
        raise ValueError(f"{where}: {len(data['inputs'])} inputs but {len(labels)} labels")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError(f"{where}: labels must be 0 or 1, found {sorted(set(labels.tolist()) - {0, 1})}")


def adapt(backbone: Backbone, teacher_variables: dict, target_train: dict, target_val: dict | None,
          config: AdaptConfig, workdir, *, devices=None, restart: bool = False, quiet: bool = False) -> AdaptResult:
    """Adapts a copy of the frozen teacher to the target domain, with `config.loss`; no source data."""
    check_split(target_train, "target_train")
    if target_val is not None:
        check_split(target_val, "target_val")
    devices = devices or parallel.local_devices()
    forward = compile_eval_forward(backbone, devices)
    outputs = predict(forward, teacher_variables, np.asarray(target_train["inputs"]), config.batch_size, devices)
    prototypes = prototypes_from_outputs(outputs["logits"], np.asarray(target_train["label"]), outputs["features"],
                                         config.loss.prototype)

    def write_prototypes():
        # After --restart has moved the previous run aside, so this run's file is the one kept.
        (Path(workdir) / "prototypes.json").write_text(json.dumps(
            {name: np.asarray(value).tolist() for name, value in prototypes.items()}) + "\n")

    return _fit(backbone, teacher_variables, teacher_variables, prototypes, target_train, target_val, config,
                workdir, devices, restart, quiet, forward, write_prototypes)


def train_source_model(backbone: Backbone, init_variables: dict, train: dict, val: dict | None, config: AdaptConfig,
                       workdir, *, devices=None, restart: bool = False, quiet: bool = False) -> AdaptResult:
    """Trains a model from `init_variables` with CE alone (config.loss must give kd = rel = l2sp = 0)."""
    check_split(train, "train")
    weights = config.loss.weights()
    if weights["kd"] or weights["rel"] or weights["l2sp"]:
        raise ValueError(f"loss: a source model is trained with CE alone; got weights {weights}")
    devices = devices or parallel.local_devices()
    empty = {"means": np.zeros((2, 5, 1), np.float32), "counts": np.zeros((2, 5), np.float32)}
    return _fit(backbone, init_variables, init_variables, empty, train, val, config, workdir, devices, restart, quiet,
                compile_eval_forward(backbone, devices))


def _fit(backbone, teacher_variables, student_variables, prototypes, train, val, config: AdaptConfig, workdir,
         devices, restart, quiet, forward, after_restore=None) -> AdaptResult:
    parallel.check_global_batch(config.batch_size)
    log = RunLog(workdir, quiet)
    step = compile_adapt_step(backbone, config.loss, config.momentum, config.box_axes, devices)
    teacher, protos = parallel.replicate((teacher_variables, prototypes), devices)
    weights = config.loss.weights()
    loader = ArrayLoader(train, config.batch_size, config.loop.seed)

    def step_fn(device_state, epoch, iterators):
        batch = parallel.shard_batch(next(iterators["train"]), len(devices))
        device_state, metrics = step(device_state, batch, config.lr, weights, teacher, protos)
        return device_state, {**metrics, "lr": np.full(len(devices), config.lr)}

    def on_epoch_end(epoch, state):
        if val is None:
            return {}
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        logits = predict(forward, variables, np.asarray(val["inputs"]), config.batch_size, devices)["logits"]
        return {"target_val_error_percent": 100.0 * float(np.mean(logits.argmax(-1) != np.asarray(val["label"])))}

    state = TrainState(step=first_step(), params=student_variables["params"],
                       batch_stats=student_variables["batch_stats"],
                       opt=sgd(config.momentum).init(student_variables["params"]), key=run_key_data(config.loop.seed))
    result = driver.run(loop=config.loop, config=config, workdir=workdir, state=jax.device_get(state),
                        loaders={"train": loader}, step_fn=step_fn, devices=devices, log=log,
                        epoch_steps=driver.steps_per_epoch(config.loop, loader),
                        hooks=driver.Hooks(on_epoch_end=on_epoch_end, after_restore=after_restore), restart=restart)
    log.close()
    variables = {"params": result.state.params, "batch_stats": result.state.batch_stats}
    return AdaptResult(variables, result.step, result.interrupted)
