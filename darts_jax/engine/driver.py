"""The run driver: one loop for every task, knowing nothing of NAS or of the task's data.

`run` resumes from the newest usable checkpoint (or takes initial weights from another run with
`init_from`), steps through epochs, logs, stops on non-finite metrics, checkpoints every N steps and
at each epoch end, and on SIGTERM or SIGINT finishes the step in flight, saves and returns. A task's
`early_stop` hook may end the run at an epoch end; the checkpoint records it, so the run stays finished.

Metrics are read one step late: step N + 1 is dispatched before step N's metrics are fetched, so the
host never waits on the device between steps (nanodo does the same). The run syncs only where it
must: at checkpoints, epoch ends and stops. A non-finite value still names the step that made it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
from typing import Any, Callable

import jax

from darts_jax.engine import config as config_lib
from darts_jax.engine import parallel
from darts_jax.engine import workdir as workdir_lib
from darts_jax.engine.checkpoint import CheckpointError, RunCheckpoints, check_same_shapes, load_weights
from darts_jax.engine.config import LoopConfig
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.signals import StopRequest

# What a resumed run may change: its length and bookkeeping, how depthwise convolutions are lowered and
# how the state is laid out between steps (the same arithmetic). Everything else would change the run
# mid-way, so it is refused.
# Field names are unique across a run config's nesting, so they are matched by name at any depth.
RESUMABLE = ("epochs", "log_every", "checkpoint_every", "keep_checkpoints", "keep_best", "init_from", "depthwise",
             "packed_state")


@dataclasses.dataclass
class RunResult:
    state: Any  # host copy of the final state
    step: int
    interrupted: bool
    early_stop: dict | None = None  # what the task's early_stop hook returned, when it ended the run


@dataclasses.dataclass(frozen=True)
class Hooks:
    """What a task adds to the loop; each hook sees host copies of the state."""
    check_meta: Callable[[dict], None] | None = None  # refuses a checkpoint of another architecture
    after_restore: Callable[[], None] | None = None  # the run's settings are accepted (write genotype.json)
    on_epoch_start: Callable[[int, Any], None] | None = None
    on_epoch_end: Callable[[int, Any], dict | None] | None = None  # extra epoch summary values
    meta: Callable[[Any], dict] | None = None  # extra checkpoint meta
    # (epoch, epoch summary) -> None to go on, or a JSON record of why the run ends here, finished.
    early_stop: Callable[[int, dict], dict | None] | None = None


def steps_per_epoch(loop: LoopConfig, loader) -> int:
    return loop.steps_per_epoch or loader.steps_per_epoch


def run(*, loop: LoopConfig, config, workdir, state, loaders: dict, step_fn: Callable, devices, log: RunLog,
        epoch_steps: int, hooks: Hooks = Hooks(), restart: bool = False) -> RunResult:
    """Drives `step_fn(device_state, epoch, iterators) -> (device_state, device metrics)` to loop.epochs.

    `config` is the whole run config, written to `config.json` and into every checkpoint's meta. The
    workdir is locked for the duration (by process 0, which writes); `restart` moves a previous run aside.
    """
    workdir = workdir_lib.prepare(workdir)
    with workdir_lib.locked(workdir, log.say) if log.writes else contextlib.nullcontext():
        if restart and log.writes:
            workdir_lib.move_previous_run_aside(workdir, log.say)
        return _run(loop, config, workdir, state, loaders, step_fn, devices, log, epoch_steps, hooks)


def _run(loop, config, workdir, state, loaders, step_fn, devices, log, epoch_steps, hooks) -> RunResult:
    checkpoints = RunCheckpoints(workdir, loop.keep_checkpoints)
    best = RunCheckpoints(workdir, loop.keep_best, lowest=loop.select_by) if loop.keep_best else None
    restored = checkpoints.restore_latest(state, hooks.check_meta)
    if restored is not None:
        step, state, meta, cursors = restored
        _check_resumable(meta["config"], config, step, loop.epochs * epoch_steps, checkpoints.directory, log)
        for name, loader in loaders.items():
            loader.restore(cursors[name])
        if meta.get("early_stop"):
            log.say(f"{workdir}: the run ended early at step {step}: {meta['early_stop'].get('reason', '')}")
            _close(checkpoints, best)
            return RunResult(state, step, interrupted=False, early_stop=meta["early_stop"])
        log.say(f"resuming {workdir} from the checkpoint at step {step} (epoch {step // epoch_steps})")
    elif loop.init_from:
        state = _with_weights_of(state, loop.init_from, log)
    if log.writes:
        config_lib.save_json(config, workdir / "config.json")
    if hooks.after_restore and log.writes:
        hooks.after_restore()
    step = int(state.step)
    total = loop.epochs * epoch_steps
    parallel.warn_of_cpu_all_reduce(devices)
    device_state = parallel.replicate(state, devices, packed=parallel.packs_state(devices, loop.packed_state))
    iterators = {name: iter(loader) for name, loader in loaders.items()}

    def save(summary=None, early_stop=None):
        host_state = parallel.unreplicate(device_state)
        meta = {"config": config_lib.to_dict(config), "epoch": step // epoch_steps, "step": step,
                "epoch_totals": epoch_totals.state(), **(hooks.meta(host_state) if hooks.meta else {}),
                **({"early_stop": early_stop} if early_stop else {})}
        cursors = {name: loader.state() for name, loader in loaders.items()}
        checkpoints.save(step, host_state, meta, cursors)
        if best is not None and summary and math.isfinite(summary.get(loop.select_by, math.nan)):
            best.save(step, host_state, {**meta, "summary": summary}, cursors,
                      metrics={loop.select_by: summary[loop.select_by]})

    # A run resumed mid-epoch carries on the epoch's sums, so its summary is the uninterrupted run's.
    epoch_totals = _EpochTotals(restored[2].get("epoch_totals") if restored and step % epoch_steps else None)
    progress, pending = None, None

    def settle():
        """Fetches and records the metrics of the last dispatched step."""
        nonlocal pending
        if pending is None:
            return
        done_step, epoch, device_metrics = pending
        pending = None
        metrics = {k: float(v[0]) for k, v in jax.device_get(device_metrics).items()}
        _check_finite(metrics, done_step, checkpoints)
        epoch_totals.add(metrics)
        progress.update(1)
        progress.set_postfix(loss=f"{metrics['loss']:.4f}")
        if done_step % loop.log_every == 0:
            log.scalars(done_step, {"epoch": epoch, **metrics})

    stop = StopRequest()
    try:
        with stop.installed():
            while step < total:
                epoch = step // epoch_steps
                if progress is None:
                    if step % epoch_steps == 0:
                        if hooks.on_epoch_start:
                            hooks.on_epoch_start(epoch, parallel.unreplicate(device_state))
                        epoch_totals = _EpochTotals()
                    progress = log.progress(epoch_steps, step % epoch_steps, f"epoch {epoch}")
                device_state, device_metrics = step_fn(device_state, epoch, iterators)
                step += 1
                settle()
                pending = (step, epoch, device_metrics)
                epoch_done = step % epoch_steps == 0
                if not (epoch_done or step % loop.checkpoint_every == 0 or stop):
                    continue
                settle()
                early_stop = None
                if epoch_done:
                    progress.close()
                    progress = None
                    summary = epoch_totals.means()
                    if hooks.on_epoch_end:
                        summary.update(hooks.on_epoch_end(epoch, parallel.unreplicate(device_state)) or {})
                    log.scalars(step, {"epoch": epoch, **summary}, stream="epochs")
                    log.say(f"epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()))
                    early_stop = hooks.early_stop(epoch, summary) if hooks.early_stop else None
                save(summary if epoch_done else None, early_stop)
                if early_stop:
                    _close(checkpoints, best)
                    log.say(f"ended early after epoch {epoch} (step {step}): {early_stop.get('reason', '')}")
                    return RunResult(parallel.unreplicate(device_state), step, interrupted=False,
                                     early_stop=early_stop)
                if stop:
                    _close(checkpoints, best)
                    log.say(f"{stop.signal_name}: stopped after step {step}, checkpoint saved. "
                            f"Run the same command again to resume from it.")
                    return RunResult(parallel.unreplicate(device_state), step, interrupted=True)
        settle()
        if progress is not None:
            progress.close()
        host_state = parallel.unreplicate(device_state)
        if not checkpoints.steps() or checkpoints.steps()[-1] != step:
            save()
        _close(checkpoints, best)
        return RunResult(host_state, step, interrupted=False)
    except BaseException:
        # A bad file or a non-finite value ends the run here: the save in flight is committed first.
        _close(checkpoints, best)
        raise


def _close(*managers) -> None:
    for manager in managers:
        if manager is not None:
            manager.close()


class _EpochTotals:
    """Sums of the step metrics of the current epoch's steps so far, saved with each checkpoint."""

    def __init__(self, saved: dict | None = None):
        self.sums, self.count = (dict(saved["sums"]), saved["count"]) if saved else ({}, 0)

    def state(self) -> dict:
        return {"sums": dict(self.sums), "count": self.count}

    def add(self, metrics: dict) -> None:
        for k, v in metrics.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.count += 1

    def means(self) -> dict:
        return {k: v / self.count for k, v in self.sums.items()}


def _flat(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_resumable(saved: dict, config, step: int, total: int, directory, log: RunLog) -> None:
    """A resumed run keeps the settings it was started with: a change is refused, naming the field, unless
    it is one of RESUMABLE, which is said and recorded (config.json is written with it)."""
    before, after = _flat(saved), _flat(config_lib.to_dict(config))
    changed = [name for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)]
    refused = [name for name in changed if name.split(".")[-1] not in RESUMABLE]
    if refused:
        lines = [f"{name} (--{name.split('.')[-1].replace('_', '-')}): the run has {before.get(name)!r}, "
                 f"this command gives {after.get(name)!r}" for name in refused]
        raise CheckpointError(
            f"{directory}: a resumed run keeps the settings it started with, and these differ:\n  "
            + "\n  ".join(lines) + "\nDrop those flags to resume, or pass --restart (the run is moved aside) "
            "or another --workdir to start a new run with them.")
    if total < step:
        raise CheckpointError(f"{directory}: the run is at step {step}, past the {total} steps this command's "
                              f"--epochs give; give more epochs")
    for name in changed:
        log.say(f"resuming with {name} changed from {before.get(name)!r} to {after.get(name)!r}")


def _with_weights_of(state, source, log: RunLog):
    step, weights = load_weights(source)
    for name in ("params", "batch_stats"):
        check_same_shapes(getattr(state, name), weights[name], f"{source} (step {step})")
    log.say(f"initial weights from {source}, its checkpoint at step {step}")
    as_state = jax.tree.map(lambda like, value: value.astype(like.dtype), {"params": state.params,
                            "batch_stats": state.batch_stats}, weights)
    return state.replace(**as_state)


def _check_finite(metrics: dict, step: int, checkpoints: RunCheckpoints) -> None:
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        checkpoints.wait()
        saved = checkpoints.steps()
        where = f"the last good checkpoint (step {saved[-1]}) is intact" if saved else "no checkpoint was written"
        raise FloatingPointError(
            f"step {step}: non-finite " + ", ".join(f"{k} = {v}" for k, v in bad.items())
            + f"; stopping, {where}. Lower --lr, or check the data for silent or clipped audio.")
