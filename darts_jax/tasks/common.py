"""What the tasks share: their result, batches for the devices, the architecture check on resume,
the dev-set monitor, and the run configs' JSON form (whose model field depends on the space)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from darts_jax.engine import config as config_lib
from darts_jax.engine import parallel
from darts_jax.engine.checkpoint import CheckpointError
from darts_jax.engine.space import SearchSpace, get_space
from darts_jax.tasks import evaluate

# Salts of the per-step keys (darts_jax.engine.state.step_key), one per random purpose.
MASK_ARCH, MASK_WEIGHTS, DROPOUT, MASK_UNROLLED = range(4)


@dataclasses.dataclass
class TaskResult:
    state: Any  # host copy of the final state
    step: int
    interrupted: bool
    genotype: Any = None


def device_batch(iterator, devices) -> dict:
    return parallel.shard_batch(evaluate.batch_arrays(next(iterator)), len(devices))


def genotype_json(space: SearchSpace, genotype) -> str:
    return json.dumps(space.genotype_to_dict(genotype))


def architecture_check(space: SearchSpace, model, genotype=None) -> Callable[[dict], None]:
    """The check a resumed run makes of a checkpoint's meta before reading its state.

    `genotype`: a training run's (fixed) network, which the checkpoint must share too: genotypes with
    the same weight shapes would restore without error into a different network.
    """
    def check(meta: dict) -> None:
        saved_config = meta["config"]
        saved_space = saved_config.get("space", space.name)
        if saved_space != space.name:
            differences = [f"space: checkpoint has {saved_space!r}, this run has {space.name!r}"]
        else:
            saved = config_lib.from_dict(space.config_type, saved_config["model"], "checkpoint config.model")
            differences = space.architecture_differences(saved, model)
        if genotype is not None and meta.get("genotype") != space.genotype_to_dict(genotype):
            saved_text = space.genotype_text(space.genotype_from_dict(meta["genotype"], model, "the checkpoint"))
            differences.append(f"genotype: checkpoint has {saved_text}, this run has {space.genotype_text(genotype)}")
        if differences:
            raise CheckpointError(
                "the checkpoint was made with a different architecture:\n  " + "\n  ".join(differences)
                + "\nUse the same settings, another --workdir, or --restart to discard it.")

    return check


def dev_monitor(eval_step, dev_loader, dev_metrics, devices) -> Callable | None:
    """The epoch-end hook scoring the dev set (the supernet with its α/β, when the state has them)."""
    if dev_loader is None:
        return None

    def on_epoch_end(epoch, state):
        variables = {"params": state.params, "batch_stats": state.batch_stats}
        scores = evaluate.score(eval_step, variables, getattr(state, "arch", None), dev_loader, devices)
        return dev_metrics(scores) if dev_metrics else {}

    return on_epoch_end


def load_run_config(cls, path: str | Path):
    """A task config from a run's config.json, its model field read as its space's model config."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --workdir must hold a darts-jax run")
    task = cls.__name__.removesuffix("Config").lower()
    data = config_lib.read_json(path)
    if isinstance(data, dict):
        foreign = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if foreign:
            raise ValueError(f"{path} is not the config of a {task} run (it has {', '.join(foreign)}): --workdir "
                             f"must hold a `darts-jax {task}` run" + (
                                 "; to train a searched genotype, pass --genotype WORKDIR/genotype.json to "
                                 "`darts-jax train`" if "warmup_epochs" in foreign else ""))
    space_name = data.get("space", "pcdarts") if isinstance(data, dict) else "pcdarts"
    # One read: the same JSON, already parsed, builds the config (from_dict names a bad field).
    return config_lib.from_dict(cls, data, str(path), {"model": get_space(space_name).config_type})



def resumable_config(cls, workdir) -> Any:
    """The saved config of the run in `workdir` when it has a checkpoint to resume from, else None."""
    checkpoints = Path(workdir) / "checkpoints"
    if not (checkpoints.is_dir() and any(p.name.isdigit() for p in checkpoints.iterdir())):
        return None
    return load_run_config(cls, Path(workdir) / "config.json")
