"""Stage 2: the live/spoof classifier, from scratch, with depth as an auxiliary loss, or reusing stage 1.

Methods (spec related_systems §4.2; the method and baselines share one backbone):
- `scratch`: the encoder + pooling + FC from random weights, binary CE;
- `aux`: encoder and decoder from random weights, CE + λ·L1 of the predicted to the true depth;
- `reuse`: the classifier initialised from a stage-1 run (`pretrained`, GAN or L1-only) by the explicit
  path mapping of `models.reuse_mapping`; `freeze_epochs` first epochs update only the head.
The score of an image is its live logit (the live probability's ranking), or with `fuse_depth` the mean of
the live probability and the mean predicted depth.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.tasks.arrays import ArrayLoader
from darts_jax.engine import driver, parallel
from darts_jax.engine.checkpoint import check_same_shapes, load_weights
from darts_jax.engine.config import LoopConfig, OptimConfig
from darts_jax.engine.optim import cosine_lr, weight_optimizer
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.state import TrainState, first_step, run_key_data
from darts_jax.tasks.common import TaskResult
from darts_jax.tasks.pseudodepth import scoring
from darts_jax.tasks.pseudodepth.models import DepthModelConfig, SpoofClassifier, reuse_mapping
from darts_jax.tasks.pseudodepth.steps import classifier_outputs, classifier_step

METHODS = ("scratch", "aux", "reuse")


@dataclasses.dataclass(frozen=True)
class DepthTrainConfig:
    model: DepthModelConfig = DepthModelConfig()
    loop: LoopConfig = LoopConfig(epochs=6, log_every=10, checkpoint_every=1000, keep_best=0)
    optim: OptimConfig = OptimConfig(batch_size=32, lr=1e-3, lr_min=1e-4, weight_decay=0.0, class_weights=(1.0, 1.0))
    method: str = "scratch"
    reuse: str = "encoder"  # reuse: "encoder" or "encoder_decoder" (a head on the predicted map too)
    pretrained: str | None = None  # reuse: the workdir of a `depth-pretrain` run
    freeze_epochs: int = 0
    lambda_depth: float = 1.0  # aux: weight of the depth L1 beside the CE
    fuse_depth: bool = False  # score = (live probability + mean predicted depth) / 2; needs a decoder

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method (--method): {self.method!r}; expected one of {METHODS}")
        reuse_mapping(self.reuse)
        if (self.method == "reuse") != (self.pretrained is not None):
            raise ValueError("pretrained (--pretrained): give the stage-1 workdir exactly when --method reuse")
        if not 0 <= self.freeze_epochs < self.loop.epochs or (self.freeze_epochs and self.method != "reuse"):
            raise ValueError(f"freeze_epochs (--freeze-epochs): {self.freeze_epochs} must be below --epochs "
                             f"({self.loop.epochs}), and only a reused backbone is frozen")
        if self.fuse_depth and not self.has_decoder:
            raise ValueError("fuse_depth (--fuse-depth): needs a predicted depth map (--method aux, or reuse "
                             "with --reuse encoder_decoder)")

    @property
    def has_decoder(self) -> bool:
        return self.method == "aux" or (self.method == "reuse" and self.reuse == "encoder_decoder")

    @property
    def backbone(self) -> tuple[str, ...]:
        return tuple(reuse_mapping(self.reuse).values()) if self.method == "reuse" else ()


def init_classifier(config: DepthTrainConfig) -> dict:
    size = config.model.size
    return SpoofClassifier(config.model, config.has_decoder).init(
        jax.random.key(config.loop.seed), jnp.zeros((1, size, size, 1)), train=False)


def copy_generator_weights(classifier_vars: dict, generator_vars: dict, mapping: dict[str, str], source: str) -> dict:
    """`classifier_vars` with each mapped generator submodule's params and BN statistics copied in."""
    copied = {collection: dict(tree) for collection, tree in classifier_vars.items()}
    for collection in ("params", "batch_stats"):
        for from_name, to_name in mapping.items():
            check_same_shapes(classifier_vars[collection][to_name], generator_vars[collection][from_name],
                              f"{source} {collection}/{from_name}")
            copied[collection][to_name] = jax.tree.map(np.asarray, generator_vars[collection][from_name])
    return copied


def init_train_state(config: DepthTrainConfig, say=print) -> TrainState:
    variables = init_classifier(config)
    if config.method == "reuse":
        step, generator_vars = load_weights(config.pretrained)
        variables = copy_generator_weights(variables, generator_vars, reuse_mapping(config.reuse), config.pretrained)
        say(f"classifier {'+'.join(config.backbone)} from the generator of {config.pretrained} (step {step})")
    return TrainState(step=first_step(), params=variables["params"], batch_stats=variables["batch_stats"],
                      opt=weight_optimizer(config.optim).init(variables["params"]), key=run_key_data(config.loop.seed))


def compile_classifier_step(config: DepthTrainConfig, devices):
    step = parallel.bind(classifier_step, model=config.model, decoder=config.has_decoder,
                         lambda_depth=config.lambda_depth if config.method == "aux" else 0.0,
                         tx=weight_optimizer(config.optim), backbone=config.backbone)
    return parallel.pmap(step, devices, (0, 0, None, None))


def image_scores(config: DepthTrainConfig, variables: dict, arrays: dict, devices=None) -> dict[str, np.ndarray]:
    """`score` (what is thresholded), `live_probability`, `live_logit` and, with a decoder, `mean_depth`."""
    devices = devices or parallel.local_devices()
    compiled = scoring.compile_outputs(classifier_outputs, devices, model=config.model, decoder=config.has_decoder)
    out = scoring.outputs_over(compiled, variables, arrays, devices)
    # The live probability in float64 on the host; the unfused score is the logit, the same ranking and
    # thresholds without the ties of probabilities rounded to 1.
    probability = 1 / (1 + np.exp(-out["live_logit"].astype(np.float64)))
    score = (probability + out["mean_depth"]) / 2 if config.fuse_depth else out["live_logit"]
    return {"score": score, "live_probability": probability, **out}


def train(config: DepthTrainConfig, train_arrays: dict, workdir, *, dev_arrays: dict | None = None, dev_metrics=None,
          devices=None, restart: bool = False, quiet: bool = False) -> TaskResult:
    """Runs (or resumes) stage 2 in `workdir`; with `dev_arrays`, `dev_metrics(scores, labels)` every epoch end."""
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.optim.batch_size)
    loader = ArrayLoader({k: train_arrays[k] for k in ("image", "depth", "label")}, config.optim.batch_size,
                         config.loop.seed)
    compiled = compile_classifier_step(config, devices)
    log = RunLog(workdir, quiet)

    def step_fn(device_state, epoch, iterators):
        lr = cosine_lr(epoch, config.loop.epochs, config.optim.lr, config.optim.lr_min)
        backbone_scale = 0.0 if epoch < config.freeze_epochs else 1.0
        batch = parallel.shard_batch(next(iterators["train"]), len(devices))
        device_state, metrics = compiled(device_state, batch, lr, backbone_scale)
        return device_state, {**metrics, "lr": np.full(len(devices), lr)}

    def on_epoch_end(epoch, state):
        scores = image_scores(config, {"params": state.params, "batch_stats": state.batch_stats}, dev_arrays, devices)
        return dev_metrics(scores["score"], dev_arrays["label"])

    hooks = driver.Hooks(on_epoch_end=on_epoch_end if dev_arrays is not None and dev_metrics else None)
    result = driver.run(loop=config.loop, config=config, workdir=workdir, state=init_train_state(config, log.say),
                        loaders={"train": loader}, step_fn=step_fn, devices=devices, log=log,
                        epoch_steps=driver.steps_per_epoch(config.loop, loader), hooks=hooks, restart=restart)
    log.close()
    return TaskResult(result.state, result.step, result.interrupted)
