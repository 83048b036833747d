"""Checkpoints of search and train runs with orbax, resumption, safe stops and exported models.

A checkpoint holds the whole state (one host copy, so it resumes on any device count), the run's
config and genotype as JSON, and the data loaders' cursors. Saves are asynchronous; a damaged
latest checkpoint is skipped with a warning for the previous complete one, and set aside in
`damaged_checkpoints/` when the resumed run next saves.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import signal
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import jax
import orbax.checkpoint as ocp

from darts_jax import config as config_lib
from darts_jax.config import ModelConfig
from darts_jax.genotype import Genotype


class CheckpointError(RuntimeError):
    pass


def _abstract(tree):
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


class RunCheckpoints:
    """The checkpoints of one run under `workdir/checkpoints`."""

    def __init__(self, workdir: str | Path, keep: int):
        self.directory = Path(workdir).resolve() / "checkpoints"
        self.manager = ocp.CheckpointManager(
            self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=True),
            item_names=("state", "meta", "loaders"))
        self._aside = self.directory.parent / "damaged_checkpoints"
        self._damaged: list[int] = []

    def steps(self) -> list[int]:
        return sorted(self.manager.all_steps())

    def save(self, step: int, state, meta: dict, loaders: dict) -> None:
        """Asynchronous save of a host copy of `state`; the previous save is finished first."""
        if self._damaged:
            self._set_aside_damaged()
        self.manager.save(step, force=True, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta), loaders=ocp.args.JsonSave(loaders)))

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
                check_meta(restored.meta)
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
        self.manager.wait_until_finished()
        self.manager.close()


def discard_checkpoints(workdir: str | Path, say=print) -> None:
    """--restart: say what is discarded, then remove it."""
    directory = Path(workdir) / "checkpoints"
    if directory.exists():
        steps = sorted(int(p.name) for p in directory.iterdir() if p.name.isdigit())
        say(f"--restart: discarding {len(steps)} checkpoint(s) in {directory} (steps {steps})")
        shutil.rmtree(directory)


def check_same_architecture(saved_meta: dict, model: ModelConfig, directory, genotype: Genotype | None = None) -> None:
    """Refuses a checkpoint of another architecture; `genotype` is a training run's (fixed) genotype."""
    saved = config_lib.from_dict(ModelConfig, saved_meta["config"]["model"], f"{directory} config.model")
    differences = config_lib.architecture_differences(saved, model)
    # Genotypes with the same weight shapes would restore without error into a different network.
    if genotype is not None and saved_meta.get("genotype") != genotype.to_dict():
        differences.append(f"genotype: checkpoint has {Genotype(**saved_meta['genotype']).to_string()}, "
                           f"this run has {genotype.to_string()}")
    if differences:
        raise CheckpointError(
            f"the checkpoint in {directory} was made with a different architecture:\n  " + "\n  ".join(differences)
            + "\nUse the same settings, another --workdir, or --restart to discard it.")


class StopRequest:
    """SIGTERM/SIGINT set a flag that the loop checks between steps, so the step in flight finishes."""

    def __init__(self):
        self.signal_name = None

    @contextlib.contextmanager
    def installed(self):
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}

        def handler(signum, frame):
            self.signal_name = signal.Signals(signum).name

        try:
            for sig in previous:
                signal.signal(sig, handler)
        except ValueError:  # not the main thread: signals cannot be caught here
            previous = {}
        try:
            yield self
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def __bool__(self):
        return self.signal_name is not None


MODEL_FILE = "model.json"


def export_model(out_dir: str | Path, train_config_dict: dict, genotype: Genotype, variables: dict) -> Path:
    """A self-contained model folder: genotype, config and front end as JSON, weights with orbax."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty; choose a new --out folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": "darts_jax-model-1", "config": train_config_dict, "genotype": genotype.to_dict()}
    (out_dir / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(out_dir / "variables", variables)
    return out_dir


def load_model(model_dir: str | Path, template_variables_fn):
    """(model meta dict, genotype, variables) of an exported model folder.

    `template_variables_fn(model_config, genotype)` gives the variables' shapes to restore into.
    """
    model_dir = Path(model_dir).resolve()
    meta_path = model_dir / MODEL_FILE
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found: --model must be a folder written by `darts-jax export`")
    meta = json.loads(meta_path.read_text())
    genotype = Genotype.from_json(meta["genotype"], where=str(meta_path))
    model = config_lib.from_dict(ModelConfig, meta["config"]["model"], f"{meta_path} config.model")
    with ocp.StandardCheckpointer() as checkpointer:
        variables = checkpointer.restore(model_dir / "variables", _abstract(template_variables_fn(model, genotype)))
    return meta, model, genotype, variables
