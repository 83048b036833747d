"""The run loops: `search`, `train` and `evaluate`, over iterables of loader batches.

Search and training share one driver (`_run`): resume from the newest usable checkpoint, step through
epochs, log, stop on non-finite values, checkpoint every N steps and at each epoch end, and on SIGTERM
or SIGINT finish the step in flight, save and return.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Callable

import jax
import numpy as np

from darts_jax import config as config_lib
from darts_jax import parallel
from darts_jax.checkpoint import RunCheckpoints, StopRequest, check_same_architecture, discard_checkpoints
from darts_jax.config import SearchConfig, TrainConfig
from darts_jax.genotype import Genotype, derive_genotype
from darts_jax.metrics import compute_eer
from darts_jax.optim import cosine_lr
from darts_jax.runlog import RunLog
from darts_jax.state import init_search_state, init_train_state


@dataclasses.dataclass
class RunResult:
    state: Any  # host copy of the final state
    step: int
    interrupted: bool
    genotype: Genotype | None = None


@dataclasses.dataclass
class Scores:
    """Per-utterance evaluation output, in loader order."""
    utt_ids: list[str]
    attacks: list[str]
    labels: np.ndarray
    scores: np.ndarray  # bona fide logit (the authors' score)
    score_diffs: np.ndarray  # logit1 - logit0

    def eer_percent(self) -> float:
        return 100 * compute_eer(self.scores[self.labels == 1], self.scores[self.labels == 0])[0]


def _steps_per_epoch(config, loader) -> int:
    return config.steps_per_epoch or loader.steps_per_epoch


def _run(*, config, workdir, state, loaders: dict, steps_per_epoch: int, step_fn: Callable, devices,
         restart: bool, log: RunLog, on_epoch_start: Callable = None, on_epoch_end: Callable = None,
         meta_fn: Callable = None, genotype: Genotype | None = None) -> RunResult:
    """Drives `step_fn(device_state, epoch, iterators) -> (device_state, metrics)` to config.epochs.

    `genotype`: a training run's network, which a resumed run must share with its checkpoint; it is
    written beside the config only once the checkpoint has accepted it.
    """
    workdir = Path(workdir)
    if restart:
        discard_checkpoints(workdir, log.say)
    checkpoints = RunCheckpoints(workdir, config.keep_checkpoints)
    restored = checkpoints.restore_latest(
        state, lambda meta: check_same_architecture(meta, config.model, checkpoints.directory, genotype))
    if restored is not None:
        step, state, meta, cursors = restored
        for name, loader in loaders.items():
            loader.restore(cursors[name])
        log.say(f"resuming {workdir} from the checkpoint at step {step} (epoch {step // steps_per_epoch})")
    config_lib.save_json(config, workdir / "config.json")
    if genotype is not None and log.writes:
        (workdir / "genotype.json").write_text(genotype.to_json() + "\n")
    step = int(state.step)
    total = config.epochs * steps_per_epoch
    device_state = parallel.replicate(state, devices)
    iterators = {name: iter(loader) for name, loader in loaders.items()}

    def save():
        host_state = parallel.unreplicate(device_state)
        meta = {"config": config_lib.to_dict(config), "epoch": step // steps_per_epoch, "step": step,
                **(meta_fn(host_state) if meta_fn else {})}
        checkpoints.save(step, host_state, meta, {name: loader.state() for name, loader in loaders.items()})

    stop = StopRequest()
    progress, totals = None, {}
    with stop.installed():
        while step < total:
            epoch, in_epoch = divmod(step, steps_per_epoch)
            if progress is None:
                if on_epoch_start:
                    on_epoch_start(epoch, parallel.unreplicate(device_state))
                progress, totals = log.progress(steps_per_epoch, in_epoch, f"epoch {epoch}"), {}
            device_state, metrics = step_fn(device_state, epoch, iterators)
            step += 1
            metrics = {k: float(v[0]) for k, v in jax.device_get(metrics).items()}
            _check_finite(metrics, step, checkpoints)
            for k, v in metrics.items():
                totals[k] = totals.get(k, 0.0) + v
            progress.update(1)
            progress.set_postfix(loss=f"{metrics['loss']:.4f}")
            if step % config.log_every == 0:
                log.scalars(step, {"epoch": epoch, **metrics})
            epoch_done = step % steps_per_epoch == 0
            if epoch_done:
                progress.close()
                progress = None
                summary = {k: v / (in_epoch + 1) for k, v in totals.items()}
                if on_epoch_end:
                    summary.update(on_epoch_end(epoch, parallel.unreplicate(device_state)) or {})
                log.scalars(step, {"epoch": epoch, **summary}, stream="epochs")
                log.say(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
            if epoch_done or step % config.checkpoint_every == 0 or stop:
                save()
            if stop:
                checkpoints.close()
                log.say(f"{stop.signal_name}: stopped after step {step}, checkpoint saved. "
                        f"Run the same command again to resume from it.")
                return RunResult(parallel.unreplicate(device_state), step, interrupted=True)
    if progress is not None:
        progress.close()
    host_state = parallel.unreplicate(device_state)
    if not checkpoints.steps() or checkpoints.steps()[-1] != step:
        save()
    checkpoints.close()
    return RunResult(host_state, step, interrupted=False)


def _check_finite(metrics: dict, step: int, checkpoints: RunCheckpoints) -> None:
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        checkpoints.wait()
        saved = checkpoints.steps()
        where = f"the last good checkpoint (step {saved[-1]}) is intact" if saved else "no checkpoint was written"
        raise FloatingPointError(
            f"step {step}: non-finite " + ", ".join(f"{k} = {v}" for k, v in bad.items())
            + f"; stopping, {where}. Lower --lr, or check the data for silent or clipped audio.")


def _dev_monitor(eval_step, dev_loader, devices) -> Callable:
    """The epoch-end hook scoring the dev partition (the supernet with its α/β, when the state has them)."""
    def on_epoch_end(epoch, state):
        if dev_loader is None:
            return {}
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        scores = score(eval_step, variables, getattr(state, "arch", None), dev_loader, devices)
        return {"dev_eer_percent": scores.eer_percent(),
                "dev_accuracy": float(np.mean((scores.score_diffs > 0) == (scores.labels == 1)))}

    return on_epoch_end


def _device_batch(iterator, devices):
    return parallel.shard_batch(next(iterator), len(devices))


def search(config: SearchConfig, weight_loader, arch_loader, workdir, *, dev_loader=None, devices=None,
           restart: bool = False, quiet: bool = False) -> RunResult:
    """PC-DARTS search: α/β on `arch_loader` batches (after warm-up), weights on `weight_loader`."""
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.batch_size)
    log = RunLog(workdir, quiet)
    compiled = parallel.compile_search_steps(config, devices)
    steps_per_epoch = _steps_per_epoch(config, weight_loader)

    def step_fn(device_state, epoch, iterators):
        lr = cosine_lr(epoch, config.epochs, config.lr, config.lr_min)
        weight_batch = _device_batch(iterators["weights"], devices)
        metrics = {}
        if epoch >= config.warmup_epochs:
            arch_batch = _device_batch(iterators["arch"], devices)
            device_state, arch_metrics = compiled.arch_step(device_state, arch_batch, weight_batch, lr)
            metrics = {f"arch_{k}": v for k, v in arch_metrics.items()}
        device_state, weight_metrics = compiled.weight_step(device_state, weight_batch, lr)
        return device_state, {**metrics, **weight_metrics, "lr": np.full(len(devices), lr)}

    def on_epoch_start(epoch, state):
        # As the authors, the genotype is logged at the start of every epoch.
        genotype = derive_genotype(state.arch, config.model.primitives)
        log.say(f"epoch {epoch} genotype: {genotype.to_string()}")
        log.text(int(state.step), "genotype", genotype.to_string())
        log.scalars(int(state.step), {"epoch": epoch, "genotype": genotype.to_dict(),
                                      "arch": {k: np.asarray(v).tolist() for k, v in state.arch.items()}},
                    stream="genotypes")

    def meta_fn(state):
        return {"genotype": derive_genotype(state.arch, config.model.primitives).to_dict()}

    result = _run(config=config, workdir=workdir, state=init_search_state(config),
                  loaders={"weights": weight_loader, "arch": arch_loader}, steps_per_epoch=steps_per_epoch,
                  step_fn=step_fn, devices=devices, restart=restart, log=log, on_epoch_start=on_epoch_start,
                  on_epoch_end=_dev_monitor(compiled.eval_step, dev_loader, devices), meta_fn=meta_fn)
    result.genotype = derive_genotype(result.state.arch, config.model.primitives)
    if log.writes:
        (Path(workdir) / "genotype.json").write_text(result.genotype.to_json() + "\n")
    log.say(f"genotype after step {result.step}: {result.genotype.to_string()}")
    log.close()
    return result


def train(config: TrainConfig, genotype: Genotype, train_loader, workdir, *, dev_loader=None, devices=None,
          restart: bool = False, quiet: bool = False) -> RunResult:
    """Training from scratch of the derived network, drop path ramping 0 -> config.drop_path."""
    devices = devices or parallel.local_devices()
    parallel.check_global_batch(config.batch_size)
    log = RunLog(workdir, quiet)
    compiled = parallel.compile_train_steps(config, genotype, devices)

    def step_fn(device_state, epoch, iterators):
        lr = cosine_lr(epoch, config.epochs, config.lr, config.lr_min)
        drop_prob = config.drop_path * epoch / config.epochs
        device_state, metrics = compiled.train_step(device_state, _device_batch(iterators["train"], devices), lr,
                                                    drop_prob)
        return device_state, {**metrics, "lr": np.full(len(devices), lr)}

    result = _run(config=config, workdir=workdir, state=init_train_state(config, genotype),
                  loaders={"train": train_loader}, steps_per_epoch=_steps_per_epoch(config, train_loader),
                  step_fn=step_fn, devices=devices, restart=restart, log=log,
                  on_epoch_end=_dev_monitor(compiled.eval_step, dev_loader, devices),
                  meta_fn=lambda state: {"genotype": genotype.to_dict()}, genotype=genotype)
    result.genotype = genotype
    log.close()
    return result


def score(eval_step, variables: dict, arch, loader, devices) -> Scores:
    """Scores every utterance of `loader.one_pass()` (padding rows of the last batch dropped)."""
    params, batch_stats, arch = parallel.replicate((variables["params"], variables["batch_stats"], arch), devices)
    utt_ids, attacks, labels, scores, diffs = [], [], [], [], []
    for batch in loader.one_pass():
        out = jax.device_get(eval_step(params, batch_stats, arch, parallel.shard_batch(batch, len(devices))))
        valid = np.asarray(batch.valid_B)
        utt_ids += [u for u, v in zip(batch.utt_ids, valid) if v]
        attacks += [a for a, v in zip(batch.attacks, valid) if v]
        labels.append(np.asarray(batch.label_B)[valid])
        scores.append(out["score"].reshape(-1)[valid])
        diffs.append(out["score_diff"].reshape(-1)[valid])
    return Scores(utt_ids, attacks, np.concatenate(labels), np.concatenate(scores), np.concatenate(diffs))


def evaluate(model_config, genotype: Genotype, variables: dict, loader, *, devices=None) -> Scores:
    """Scores of a trained derived network on every utterance of `loader`."""
    devices = devices or parallel.local_devices()
    return score(parallel.compile_eval_step(model_config, genotype, devices), variables, None, loader, devices)

