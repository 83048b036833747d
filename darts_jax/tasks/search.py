"""The search task: bi-level DARTS steps on any search space, and the loop policy around them.

A search step is `arch_step` (α/β on an architecture-half batch, skipped during warm-up) followed by
`weight_step` (weights on a weight-half batch, with the updated α/β), as the authors order them; the two
are compiled separately, which halves compile time. Defaults are the authors' (spec §5.2).

`relaxation` picks how the op weights are drawn: DARTS' softmax (the default, the authors'), or a Gumbel
sampler (GDAS, SNAS, ...; darts_jax.relaxations.gumbel), drawn anew in every weight and α/β step from
keys of the step, at the τ of the epoch, which the driver derives from the state's step counter, so a
resumed run continues the schedule. The genotype is derived from α as in DARTS.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from darts_jax.engine import collectives, driver, parallel
from darts_jax.engine.config import LoopConfig, OptimConfig
from darts_jax.engine.optim import cosine_lr, coupled_adam, weight_optimizer
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.space import SearchSpace
from darts_jax.engine.state import SearchState, first_step, run_key_data, step_key
from darts_jax.engine.steps import global_loss, gradient_step
from darts_jax.relaxations import (
    DETERMINISTIC_MODES,
    PRESETS,
    SamplerConfig,
    auxiliary_skip_weight,
    beta_decay,
    derivation_weights,
    zero_one_loss,
)
from darts_jax.tasks import common, diagnostics, evaluate
from darts_jax.tasks.common import MASK_ARCH, MASK_UNROLLED, MASK_WEIGHTS

PROVISIONAL_GENOTYPE = "genotype.provisional.json"
# Salts of the Gumbel draws' per-step keys, after the tasks' own (darts_jax.tasks.common).
GUMBEL_ARCH, GUMBEL_WEIGHTS, GUMBEL_UNROLLED = range(MASK_UNROLLED + 1, MASK_UNROLLED + 4)


@dataclasses.dataclass(frozen=True)
class SearchConfig:
    model: Any  # the space's model config
    space: str = "pcdarts"
    loop: LoopConfig = LoopConfig(epochs=50)
    optim: OptimConfig = OptimConfig(batch_size=64, lr=1e-2, lr_min=1e-3)
    warmup_epochs: int = 10
    arch_lr: float = 6e-4
    arch_betas: tuple[float, float] = (0.5, 0.999)
    arch_weight_decay: float = 1e-3
    unrolled: bool = False
    # Collapse diagnostics: the dominant Hessian eigenvalue of the validation loss w.r.t. α/β every
    # `hessian_every` epochs (0: never), by power iteration of at most `hessian_iterations` steps.
    hessian_every: int = 1
    hessian_iterations: int = 20
    # Collapse remedy (β-DARTS): arch loss + w·beta_decay(α), w rising linearly from 0 after warm-up to
    # `beta_decay` at the last epoch; 0 (the authors') is off.
    beta_decay: float = 0.0
    relaxation: SamplerConfig = SamplerConfig()
    # Collapse remedies, all off as the authors (darts_jax.relaxations.remedies): Fair DARTS' zero-one loss
    # weight (its authors' 10; with `--sampler fair_darts`), DARTS-' auxiliary skip weight β at the first
    # epoch (its authors' 1), and RobustDARTS' early stop (its authors' ratio 0.75, window 5 epochs).
    zero_one: float = 0.0
    aux_skip: float = 0.0
    early_stop_ratio: float = 0.0
    early_stop_window: int = 5

    @property
    def sampled(self) -> bool:
        """Anything but DARTS' softmax at τ = 1, whose program stays exactly the authors'."""
        return self.relaxation.resolved != PRESETS["darts"]

    def __post_init__(self):
        if not 0 <= self.warmup_epochs < self.loop.epochs:
            raise ValueError(f"warmup_epochs (--warmup-epochs): {self.warmup_epochs} must be in 0 .. epochs - 1 "
                             f"({self.loop.epochs - 1}); otherwise α/β are never trained and the genotype is "
                             f"that of the random initial α/β")
        if not self.arch_lr > 0:
            raise ValueError(f"arch_lr (--arch-lr): {self.arch_lr} must be greater than 0")
        if self.hessian_every < 0 or self.hessian_iterations < 1:
            raise ValueError(f"hessian_every: {self.hessian_every} must be >= 0 and hessian_iterations: "
                             f"{self.hessian_iterations} >= 1")
        for name in ("beta_decay", "zero_one", "aux_skip"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} (--{name.replace('_', '-')}): {getattr(self, name)} must be >= 0 (0 is off)")
        if self.early_stop_ratio:
            diagnostics.check_early_stop(self.early_stop_ratio, self.early_stop_window, self.hessian_every)


def arch_optimizer(config: SearchConfig):
    return coupled_adam(config.arch_weight_decay, *config.arch_betas)


def init_search_state(space: SearchSpace, config: SearchConfig) -> SearchState:
    variables, arch = space.init_supernet(config.loop.seed, config.model)
    return SearchState(
        step=first_step(), params=variables["params"], batch_stats=variables["batch_stats"], arch=arch,
        opt_w=weight_optimizer(config.optim).init(variables["params"]), opt_a=arch_optimizer(config).init(arch),
        key=run_key_data(config.loop.seed))


def check_sampler_support(space: SearchSpace, config: SearchConfig) -> None:
    """Refuses a sampled search on a space whose supernet takes no `sampler`, DARTS-' auxiliary skip on one
    without `aux_skip`, and the sigmoid relaxation where derivation cannot read σ(α) (see engine.space)."""
    takes = inspect.signature(space.supernet(config.model).__call__).parameters
    if config.sampled and "sampler" not in takes:
        raise ValueError(f"sampler (--sampler): {config.relaxation.sampler!r} needs a supernet that draws its op "
                         f"weights; space {space.name!r} only has the softmax relaxation (use --sampler darts)")
    if config.aux_skip and "aux_skip" not in takes:
        raise ValueError(f"aux_skip (--aux-skip): space {space.name!r} has no auxiliary skip connection (DARTS-)")
    if config.relaxation.mode == "sigmoid" and "op_weights" not in inspect.signature(space.derive_genotype).parameters:
        raise ValueError(f"sampler (--sampler): {config.relaxation.sampler!r} derives genotypes from σ(α), which "
                         f"space {space.name!r}'s derivation does not take")


def derive_genotype(space: SearchSpace, config: SearchConfig, arch):
    """The genotype of `arch`, ranking ops by the relaxation's own weights (σ(α) in Fair DARTS)."""
    return space.derive_genotype(arch, config.model, **_derivation_options(config))


def arch_figures(space: SearchSpace, config: SearchConfig, arch) -> dict:
    """The space's collapse diagnostics of `arch` (its derived cells' skips and pools, ...), or {}."""
    if space.arch_diagnostics is None:
        return {}
    return dict(space.arch_diagnostics(arch, config.model, **_derivation_options(config)))


def _derivation_options(config: SearchConfig) -> dict:
    mode = config.relaxation.mode
    return {"op_weights": derivation_weights(mode)} if mode == "sigmoid" else {}


def _supernet_loss(space, config, params, batch_stats, arch, batch, mask_key, gumbel_key=None, tau=1.0,
                   aux_weight=None):
    """Loss of the supernet in train mode and (its updated BatchNorm statistics, logits); with a
    `gumbel_key` (a sampled search), the op weights are drawn from it at temperature `tau`, without one
    they are softmax(α); `aux_weight` is DARTS-' auxiliary skip weight (None: no auxiliary skip)."""
    sampling = {} if gumbel_key is None else {"sampler": config.relaxation, "tau": tau}
    if aux_weight is not None:
        sampling["aux_skip"] = aux_weight
    rngs = {"mask": mask_key} if gumbel_key is None else {"mask": mask_key, "gumbel": gumbel_key}
    logits, updates = space.supernet(config.model).apply(
        {"params": params, "batch_stats": batch_stats}, batch["inputs"], arch, train=True,
        mutable=["batch_stats"], rngs=rngs, **sampling)
    loss = global_loss(space.loss_terms, logits, batch["label"], config.optim.class_weights)
    return loss, (updates["batch_stats"], logits)


def beta_decay_weight(config: SearchConfig, epoch: int) -> float:
    """The β-DARTS weight at `epoch`: 0 in warm-up, then rising linearly to config.beta_decay."""
    searched = config.loop.epochs - config.warmup_epochs
    return config.beta_decay * max(0, epoch - config.warmup_epochs + 1) / searched


def _gumbel_key(state: SearchState, config: SearchConfig, salt: int):
    """The step's key for the op weights' draw, None in a softmax search (whose program is unchanged)."""
    return step_key(state, salt) if config.sampled else None


def _deterministic_relaxation(config: SearchConfig) -> SamplerConfig | None:
    """The relaxation scoring and the Hessian monitor use: a sampled search's own when it draws nothing
    (Fair DARTS' sigmoid), else None for softmax(α) (a loss drawn anew at each call has no Hessian)."""
    return config.relaxation if config.sampled and config.relaxation.mode in DETERMINISTIC_MODES else None


def _aux_weight(config: SearchConfig, aux_weight):
    """DARTS-' β for the supernet, or None with the remedy off (static: the program is then the authors')."""
    return aux_weight if config.aux_skip else None


def arch_step(state: SearchState, arch_batch, weight_batch, lr, reg_weight=0.0, tau=1.0, aux_weight=0.0, *,
              space: SearchSpace, config: SearchConfig):
    """One α/β update on the architecture half, first order or (config.unrolled) second order.

    The second-order gradient differentiates exactly, with autodiff, through one virtual weight step
    w' = w - lr·(∇w L_train + wd·w), where DARTS approximates it with finite differences.
    `weight_batch` is only read when unrolled; `reg_weight` (a scalar, so it never recompiles) weighs
    β-DARTS' regulariser; `tau` (a scalar too) is a sampled search's temperature, `aux_weight` DARTS-' β.
    Fair DARTS' zero-one loss, at its constant config.zero_one, joins the architecture loss.
    """
    mask_key, gumbel_key = step_key(state, MASK_ARCH), _gumbel_key(state, config, GUMBEL_ARCH)
    aux_weight = _aux_weight(config, aux_weight)

    def val_loss(arch, params):
        loss, aux = _supernet_loss(space, config, params, state.batch_stats, arch, arch_batch, mask_key, gumbel_key,
                                   tau, aux_weight)
        # Static switches: with the remedies off the program is the authors' exactly. Every device adds its
        # share of a term; the shares sum to the global batch's loss.
        if config.beta_decay:
            loss = loss + reg_weight * beta_decay(arch) / collectives.device_count()
        if config.zero_one:
            loss = loss + config.zero_one * zero_one_loss(arch) / collectives.device_count()
        return loss, aux

    if config.unrolled:
        def train_loss(params, arch):
            return _supernet_loss(space, config, params, state.batch_stats, arch, weight_batch,
                                  step_key(state, MASK_UNROLLED), _gumbel_key(state, config, GUMBEL_UNROLLED), tau,
                                  aux_weight)[0]

        def loss_fn(arch):
            grads_w = collectives.global_sum(jax.grad(train_loss)(state.params, arch))
            decay = config.optim.weight_decay
            virtual = jax.tree.map(lambda w, g: w - lr * (g + decay * w), state.params, grads_w)
            return val_loss(arch, virtual)
    else:
        def loss_fn(arch):
            return val_loss(arch, state.params)

    arch, opt_a, batch_stats, metrics = gradient_step(loss_fn, state.arch, state.opt_a, arch_optimizer(config),
                                                      config.arch_lr, arch_batch["label"])
    # PyTorch runs the α step in train mode, so its BatchNorm statistics updates are kept.
    return state.replace(arch=arch, opt_a=opt_a, batch_stats=batch_stats), metrics


def weight_step(state: SearchState, batch, lr, tau=1.0, aux_weight=0.0, *, space: SearchSpace,
                config: SearchConfig):
    """One weight update of the supernet with the current α/β (sampled at `tau` in a sampled search, with
    DARTS-' auxiliary skip at `aux_weight` when on); advances the step."""
    def loss_fn(params):
        return _supernet_loss(space, config, params, state.batch_stats, state.arch, batch,
                              step_key(state, MASK_WEIGHTS), _gumbel_key(state, config, GUMBEL_WEIGHTS), tau,
                              _aux_weight(config, aux_weight))

    params, opt_w, batch_stats, metrics = gradient_step(loss_fn, state.params, state.opt_w,
                                                        weight_optimizer(config.optim), lr, batch["label"])
    return state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_w=opt_w), metrics


@dataclasses.dataclass(frozen=True)
class SearchSteps:
    arch_step: Callable  # (state, arch_batch, weight_batch, lr, reg_weight, tau, aux_weight) -> (state, metrics)
    weight_step: Callable  # (state, weight_batch, lr, tau, aux_weight) -> (state, metrics)
    eval_step: Callable  # (params, batch_stats, arch, batch) -> outputs
    devices: list


def compile_search_steps(space: SearchSpace, config: SearchConfig, devices) -> SearchSteps:
    static = dict(space=space, config=config)
    return SearchSteps(
        arch_step=parallel.pmap(parallel.bind(arch_step, **static), devices, (0, 0, 0, None, None, None, None)),
        weight_step=parallel.pmap(parallel.bind(weight_step, **static), devices, (0, 0, None, None, None)),
        eval_step=evaluate.compile_eval_step(space, config.model, None, devices, _deterministic_relaxation(config)),
        devices=devices)


def search_step_fn(config: SearchConfig, arch_fn, weight_fn, devices, device_batch=common.device_batch,
                   step_metrics=lambda metrics: metrics) -> Callable:
    """The driver's step: an α/β step (after warm-up), then a weight step, at the epoch's lr, β-DARTS weight,
    τ and DARTS-' β. `device_batch(iterator, devices)` lays a loader's next batch out for the compiled steps, and
    `step_metrics` maps their metrics (the stacked seed search reduces its seed axis there)."""
    def step_fn(device_state, epoch, iterators):
        lr = cosine_lr(epoch, config.loop.epochs, config.optim.lr, config.optim.lr_min)
        tau = config.relaxation.tau(epoch, config.loop.epochs)
        aux_weight = auxiliary_skip_weight(epoch, config.loop.epochs, config.aux_skip)
        weight_batch = device_batch(iterators["weights"], devices)
        metrics = {}
        if epoch >= config.warmup_epochs:
            arch_batch = device_batch(iterators["arch"], devices)
            device_state, arch_metrics = arch_fn(device_state, arch_batch, weight_batch, lr,
                                                 beta_decay_weight(config, epoch), tau, aux_weight)
            metrics = {f"arch_{k}": v for k, v in step_metrics(arch_metrics).items()}
        device_state, weight_metrics = weight_fn(device_state, weight_batch, lr, tau, aux_weight)
        scheduled = {"tau": tau} if config.sampled else {}
        scheduled.update({"aux_skip": aux_weight} if config.aux_skip else {})
        return device_state, {**metrics, **step_metrics(weight_metrics), "lr": np.full(len(devices), lr),
                              **{k: np.full(len(devices), v) for k, v in scheduled.items()}}

    return step_fn


@functools.lru_cache(maxsize=8)
def _compiled_hvp(space: SearchSpace, config: SearchConfig):
    """(arch, vector, params, batch_stats, batch) -> H·vector of the validation loss w.r.t. α/β, jitted once
    per architecture and loss settings (runs of another length share it). The loss is the softmax
    relaxation's in Gumbel searches: a loss drawn anew at every call has no Hessian to iterate on. A
    deterministic relaxation other than softmax (Fair DARTS' sigmoid) is kept, at its first τ."""
    mask_key = jax.random.key(0)  # one mask for every epoch, so that the epochs compare
    relaxed = _deterministic_relaxation(config) is not None
    gumbel_key, tau = (jax.random.key(0), config.relaxation.resolved[3]) if relaxed else (None, 1.0)

    def val_loss(arch, params, batch_stats, batch):
        return _supernet_loss(space, config, params, batch_stats, arch, batch, mask_key, gumbel_key, tau)[0]

    return jax.jit(lambda arch, vector, params, batch_stats, batch: jax.jvp(
        lambda a: jax.grad(val_loss)(a, params, batch_stats, batch), (arch,), (vector,))[1])


def _hessian_monitor(space: SearchSpace, config: SearchConfig, arch_loader):
    """state -> dominant Hessian eigenvalue on the architecture half's first batch (one device), or None
    when disabled or when the loader cannot give a fixed batch (`one_pass`) without moving its cursor."""
    if not config.hessian_every or not hasattr(arch_loader, "one_pass"):
        return None
    hvp = _compiled_hvp(space, dataclasses.replace(config, loop=LoopConfig()))
    fixed_batch = None

    def eigenvalue(state):
        nonlocal fixed_batch
        if fixed_batch is None:
            fixed_batch = evaluate.batch_arrays(next(iter(arch_loader.one_pass())))
        return diagnostics.dominant_eigenvalue(
            lambda arch, vector: hvp(arch, vector, state.params, state.batch_stats, fixed_batch),
            state.arch, jax.random.key(1), config.hessian_iterations)

    return eigenvalue


def search(space: SearchSpace, config: SearchConfig, weight_loader, arch_loader, workdir, *, dev_loader=None,
           dev_metrics=None, devices=None, restart: bool = False, quiet: bool = False) -> common.TaskResult:
    """Search: α/β on `arch_loader` batches (after warm-up), weights on `weight_loader`.

    With `dev_loader`, the supernet scores it at each epoch end and `dev_metrics(scores) -> dict`
    adds to the epoch summary. With config.early_stop_ratio, the search ends when RobustDARTS' rule
    fires, and its genotype is the one of `early_stop_window` epochs earlier.
    """
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.optim.batch_size)
    check_sampler_support(space, config)
    log = RunLog(workdir, quiet)
    if config.sampled:
        log.say(f"sampler {config.relaxation.describe()}")
    compiled = compile_search_steps(space, config, devices)
    epoch_steps = driver.steps_per_epoch(config.loop, weight_loader)

    step_fn = search_step_fn(config, compiled.arch_step, compiled.weight_step, devices)
    early_stop = (diagnostics.EarlyStop(config.early_stop_ratio, config.early_stop_window, config.warmup_epochs, log)
                  if config.early_stop_ratio else None)

    def derive(state):
        return derive_genotype(space, config, state.arch)

    def on_epoch_start(epoch, state):
        # As the authors, the genotype is logged at the start of every epoch.
        genotype = derive(state)
        text, as_dict = space.genotype_text(genotype), space.genotype_to_dict(genotype)
        log.say(f"epoch {epoch} genotype: {text}")
        log.text(int(state.step), "genotype", text)
        log.scalars(int(state.step), {"epoch": epoch, "genotype": as_dict,
                                      "arch": {k: np.asarray(v).tolist() for k, v in state.arch.items()}},
                    stream="genotypes")
        if early_stop is not None:
            early_stop.record_genotype(epoch, as_dict)

    dev = common.dev_monitor(compiled.eval_step, dev_loader, dev_metrics, devices)
    curvature = _hessian_monitor(space, config, arch_loader)

    def on_epoch_end(epoch, state):
        figures = arch_figures(space, config, state.arch)
        if curvature is not None and (epoch + 1) % config.hessian_every == 0:
            figures["hessian_eigenvalue"] = curvature(state)
        return {**figures, **(dev(epoch, state) if dev else {})}

    hooks = driver.Hooks(
        check_meta=common.architecture_check(space, config.model),
        on_epoch_start=on_epoch_start,
        on_epoch_end=on_epoch_end,
        meta=lambda state: {"genotype": space.genotype_to_dict(derive(state))},
        early_stop=early_stop)
    result = driver.run(loop=config.loop, config=config, workdir=workdir, state=init_search_state(space, config),
                        loaders={"weights": weight_loader, "arch": arch_loader}, step_fn=step_fn, devices=devices,
                        log=log, epoch_steps=epoch_steps, hooks=hooks, restart=restart)
    if result.early_stop:
        genotype = space.genotype_from_dict(result.early_stop["genotype"], config.model,
                                            f"{workdir}: the early stop's genotype")
    else:
        genotype = derive(result.state)
    # A stopped search has no final genotype yet: what it would derive now goes to a file of its own.
    final, provisional = Path(workdir) / "genotype.json", Path(workdir) / PROVISIONAL_GENOTYPE
    if log.writes:
        (provisional if result.interrupted else final).write_text(common.genotype_json(space, genotype) + "\n")
        if not result.interrupted:
            provisional.unlink(missing_ok=True)
    if result.interrupted:
        log.say(f"provisional genotype after step {result.step} of {config.loop.epochs * epoch_steps} in "
                f"{provisional}; genotype.json is written when the search finishes: "
                f"{space.genotype_text(genotype)}")
    elif result.early_stop:
        log.say(f"genotype of the end of epoch {result.early_stop['genotype_epoch']} (early stop after step "
                f"{result.step}): {space.genotype_text(genotype)}")
    else:
        log.say(f"genotype after step {result.step}: {space.genotype_text(genotype)}")
    log.close()
    return common.TaskResult(result.state, result.step, result.interrupted, genotype)
