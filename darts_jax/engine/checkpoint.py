"""Checkpoints of runs with orbax: save, resume from the newest usable one, weights for another run.

A checkpoint holds the whole state (one host copy, so it resumes on any device count), the run's
meta (its config, and what the task adds, such as a genotype) as JSON, and the data loaders' cursors.
Saves are asynchronous; a damaged latest checkpoint is skipped with a warning for the previous
complete one, and set aside in `damaged_checkpoints/` when the resumed run next saves.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import traverse_util


class CheckpointError(RuntimeError):
    pass


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class RunCheckpoints:
    """The checkpoints of one run under `workdir/checkpoints`: the newest `keep`.

    With `lowest` (a metric name), under `workdir/best_checkpoints` instead: the `keep` with the lowest
    value of that metric, each saved with it (`save(..., metrics=)`), for epoch selection.
    """

    def __init__(self, workdir: str | Path, keep: int, lowest: str | None = None):
        self.directory = Path(workdir).resolve() / ("best_checkpoints" if lowest else "checkpoints")
        self.lowest = lowest
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=True, keep_checkpoints_without_metrics=lowest is None,
            best_fn=(lambda metrics: metrics[lowest]) if lowest else None, best_mode="min")
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta", "loaders"))
        self._aside = self.directory.parent / "damaged_checkpoints"
        self._damaged: list[int] = []
        self._closed = False

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, meta: dict, loaders: dict, metrics: dict | None = None) -> None:
        """Asynchronous save of a host copy of `state`; the previous save is finished first."""
        if self._damaged:
            self._set_aside_damaged()
        self.manager.save(step, force=True, metrics=metrics, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta), loaders=ocp.args.JsonSave(loaders)))

    def best_step(self) -> int | None:
        """The kept step with the lowest metric (only with `lowest`)."""
        return self.manager.best_step()

    def restore(self, step: int, template_state):
        """(state, meta) of one step; CheckpointError naming the steps kept when it is not among them."""
        if step not in self.steps():
            raise CheckpointError(f"{self.directory} has no checkpoint of step {step}; it keeps steps {self.steps()}")
        failures = []
        restored = self._try_restore(step, failures, state=ocp.args.StandardRestore(_abstract(template_state)),
                                     meta=ocp.args.JsonRestore())
        if restored is None:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} cannot be read: {failures[0]}")
        return restored.state, restored.meta

    def restore_latest(self, template_state, check_meta: Callable[[dict], None] | None = None):
        """(step, state, meta, loaders) of the newest usable checkpoint, or None when there is none.

        `check_meta` sees the meta before the state is read, so that a run of another architecture is
        refused with its reason instead of being mistaken for damage. Checkpoints that fail to restore
        are skipped with a warning naming them; when every one fails, CheckpointError, because silently
        starting from scratch would throw away the user's run.
        """
        failures = []
        for step in reversed(self.steps()):
            restored = self._try_restore(step, failures, meta=ocp.args.JsonRestore(), loaders=ocp.args.JsonRestore())
            if restored is None:
                continue
            if check_meta:
                try:
                    check_meta(restored.meta)
                except CheckpointError as err:
                    raise CheckpointError(f"{self.directory / str(step)}: {err}") from None
            state = self._try_restore(step, failures, state=ocp.args.StandardRestore(_abstract(template_state)))
            if state is not None:
                return step, state.state, restored.meta, restored.loaders
        if failures:
            raise CheckpointError(
                f"no usable checkpoint in {self.directory}:\n  " + "\n  ".join(failures)
                + "\nRepair or move the folder, or pass --restart to start over.")
        return None

    def _try_restore(self, step: int, failures: list, **items):
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**items))
        except Exception as err:  # orbax/tensorstore raise many types for missing or truncated files
            failures.append(f"step {step}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            warnings.warn(f"checkpoint {self.directory / str(step)} is damaged or incomplete ({failures[-1]}); "
                          f"trying the previous one. A resumed run moves it to {self._aside}", stacklevel=3)
            self._damaged.append(step)
            return None

    def _set_aside_damaged(self) -> None:
        """Moves skipped checkpoints out of the manager's way: it refuses to save over an existing step."""
        self._aside.mkdir(parents=True, exist_ok=True)
        for step in self._damaged:
            shutil.move(self.directory / str(step), tempfile.mkdtemp(prefix=f"step{step}-", dir=self._aside))
        self._damaged = []
        self.manager.reload()

    def wait(self) -> None:
        self.manager.wait_until_finished()

    def close(self) -> None:
        """Waits for the save in flight, then releases the manager; closing twice is harmless."""
        if not self._closed:
            self.manager.wait_until_finished()
            self.manager.close()
            self._closed = True


def load_weights(workdir: str | Path) -> tuple[int, dict]:
    """(step, {"params", "batch_stats"}) of the newest usable checkpoint of any run in `workdir`."""
    workdir = Path(workdir)
    directory = workdir.resolve() / "checkpoints"
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} not found: --init-from must name the workdir of an earlier run")
    checkpoints = RunCheckpoints(workdir, keep=None)
    try:
        for step in reversed(checkpoints.steps()):
            restored = checkpoints._try_restore(step, [], state=ocp.args.StandardRestore())
            if restored is not None:
                state = restored.state
                return step, {"params": state["params"], "batch_stats": state["batch_stats"]}
    finally:
        checkpoints.close()
    raise CheckpointError(f"{directory} holds no usable checkpoint to take weights from")


def check_same_shapes(template: dict, loaded: dict, source: str) -> None:
    """Refuses weights whose names or shapes differ from the run's own, listing every difference."""
    want = {"/".join(k): np.shape(v) for k, v in traverse_util.flatten_dict(template).items()}
    have = {"/".join(k): np.shape(v) for k, v in traverse_util.flatten_dict(loaded).items()}
    problems = [f"{name}: missing in {source}" for name in sorted(set(want) - set(have))]
    problems += [f"{name}: in {source} but not in this network" for name in sorted(set(have) - set(want))]
    problems += [f"{name}: shape {have[name]} in {source}, {want[name]} here"
                 for name in sorted(set(want) & set(have)) if want[name] != have[name]]
    if problems:
        shown = problems[:10] + ([f"... and {len(problems) - 10} more"] if len(problems) > 10 else [])
        raise CheckpointError(f"the weights of {source} do not fit this network:\n  " + "\n  ".join(shown))
