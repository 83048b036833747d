"""Stage 1: adversarial pseudo-depth pretraining of the U-Net generator (or L1 alone: `gan_loss=None`).

RECONSTRUCTION of the paper's stage 1 after pix2pix (spec related_systems §4.2): Adam 2e-4 for G (5e-5
for D, see `d_lr`), betas (0.5, 0.999), λ_rec = 100, a D step then a G step per batch. Each epoch end
records, per monitored split, the L1 of the predicted to the true depth on live faces and whatever
`monitor_metrics` derives from the mean predicted depth (its live/spoof AUC, say).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.tasks.arrays import ArrayLoader
from darts_jax.engine import driver, parallel
from darts_jax.engine.config import LoopConfig
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.state import first_step, run_key_data
from darts_jax.tasks.common import TaskResult
from darts_jax.tasks.pseudodepth import scoring
from darts_jax.tasks.pseudodepth.models import DepthModelConfig, PatchDiscriminator, UNetGenerator
from darts_jax.tasks.pseudodepth.steps import GAN_LOSSES, PretrainState, adam_gan, generator_outputs, pretrain_step


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    model: DepthModelConfig = DepthModelConfig()
    loop: LoopConfig = LoopConfig(epochs=8, log_every=10, checkpoint_every=1000, keep_best=0)
    batch_size: int = 32
    lr: float = 2e-4
    b1: float = 0.5
    b2: float = 0.999
    lambda_rec: float = 100.0
    gan_loss: str | None = "bce"  # "bce", "lsgan", or None: the L1-only ablation (no discriminator)
    # D's learning rate. Deviation from pix2pix's 2e-4 for both: at 2e-4 this D's accuracy passes 0.95
    # by epoch 6 of 8 (protocol corpus, seed 0), with or without instance noise (σ 0.05, 0.1) on its depth
    # maps; a slower D keeps the game open (spec §4.5 d: accuracy inside (0.55, 0.95) after warm-up).
    d_lr: float = 5e-5

    def __post_init__(self):
        if self.gan_loss is not None and self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss (--gan-loss): {self.gan_loss!r}; expected one of {GAN_LOSSES} or none")
        if not (self.lr > 0 and self.d_lr > 0 and self.lambda_rec >= 0 and self.batch_size >= 1):
            raise ValueError("lr and d_lr must be > 0, lambda_rec >= 0 and batch_size >= 1")


def init_pretrain_state(config: PretrainConfig) -> PretrainState:
    size = config.model.size
    images, depth = jnp.zeros((1, size, size, 1)), jnp.zeros((1, size, size))
    g_key, d_key = jax.random.split(jax.random.key(config.loop.seed))
    g_vars = UNetGenerator(config.model).init(g_key, images, train=False)
    d_vars = PatchDiscriminator(config.model).init(d_key, images, depth, train=False)
    tx = adam_gan(config.b1, config.b2)
    return PretrainState(step=first_step(), params=g_vars["params"], batch_stats=g_vars["batch_stats"],
                         opt_g=tx.init(g_vars["params"]), d_params=d_vars["params"], d_stats=d_vars["batch_stats"],
                         opt_d=tx.init(d_vars["params"]), key=run_key_data(config.loop.seed))


def compile_pretrain_step(config: PretrainConfig, devices):
    step = parallel.bind(pretrain_step, model=config.model, gan_loss=config.gan_loss, lambda_rec=config.lambda_rec,
                         b1=config.b1, b2=config.b2)
    return parallel.pmap(step, devices, (0, 0, None, None))


def depth_monitor(config: PretrainConfig, monitor: dict, monitor_metrics, devices):
    """The epoch-end hook: `<split>_live_l1` and `monitor_metrics(mean depth, labels)` per monitored split."""
    compiled = scoring.compile_outputs(generator_outputs, devices, model=config.model)

    def on_epoch_end(epoch, state):
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        summary = {}
        for split, arrays in monitor.items():
            out = scoring.outputs_over(compiled, variables, arrays, devices)
            summary[f"{split}_live_l1"] = float(out["l1"][arrays["label"] == 1].mean())
            if monitor_metrics:
                derived = monitor_metrics(out["mean_depth"], arrays["label"])
                summary.update({f"{split}_{k}": v for k, v in derived.items()})
        return summary

    return on_epoch_end


def pretrain(config: PretrainConfig, train_arrays: dict, workdir, *, monitor: dict | None = None,
             monitor_metrics=None, devices=None, restart: bool = False, quiet: bool = False) -> TaskResult:
    """Runs (or resumes) stage 1 in `workdir` on `train_arrays` (image, depth, label)."""
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.batch_size)
    loader = ArrayLoader({k: train_arrays[k] for k in ("image", "depth")}, config.batch_size, config.loop.seed)
    compiled = compile_pretrain_step(config, devices)

    def step_fn(device_state, epoch, iterators):
        batch = parallel.shard_batch(next(iterators["train"]), len(devices))
        device_state, metrics = compiled(device_state, batch, config.lr, config.d_lr)
        return device_state, {**metrics, "lr": np.full(len(devices), config.lr)}

    log = RunLog(workdir, quiet)
    hooks = driver.Hooks(on_epoch_end=depth_monitor(config, monitor, monitor_metrics, devices) if monitor else None)
    result = driver.run(loop=config.loop, config=config, workdir=workdir, state=init_pretrain_state(config),
                        loaders={"train": loader}, step_fn=step_fn, devices=devices, log=log,
                        epoch_steps=driver.steps_per_epoch(config.loop, loader), hooks=hooks, restart=restart)
    log.close()
    return TaskResult(result.state, result.step, result.interrupted)
