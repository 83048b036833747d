"""Model folders: a trained network as JSON (config, genotype), orbax weights and an optional calibration.

A model folder is self-contained: `load_model` needs only darts_jax and the folder, not the run.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import orbax.checkpoint as ocp

from darts_jax.engine import config as config_lib
from darts_jax.spaces import get_space
from darts_jax.spoofing.calibration import store_calibration
from darts_jax.tasks.train import TrainConfig

MODEL_FILE = "model.json"
FORMAT = "darts_jax-model-1"


def export_model(out_dir: str | Path, config: TrainConfig, genotype, variables: dict, calibration=None) -> Path:
    """Writes a model folder (with `calibration`, a darts_jax.spoofing.calibration.Calibration, when given);
    refuses a folder that exists and is not empty."""
    out_dir = check_new_folder(out_dir)
    space = get_space(config.space)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "config": config_lib.to_dict(config), "genotype": space.genotype_to_dict(genotype)}
    (out_dir / MODEL_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(out_dir / "variables", variables)
    store_calibration(out_dir, calibration)
    return out_dir


def check_new_folder(out_dir: str | Path) -> Path:
    """`out_dir`, resolved, once it is known to be a new or empty folder: nothing of the user's is replaced."""
    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"--out {out_dir} is a file; a model is a folder: choose a new --out folder")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"{out_dir} exists and is not empty; choose a new --out folder")
    return out_dir


def load_model(model_dir: str | Path):
    """(space, model config, genotype, variables) of a model folder written by `export_model`."""
    model_dir = Path(model_dir).resolve()
    meta_path = model_dir / MODEL_FILE
    if not meta_path.is_file():
        if (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"{model_dir} is a run's workdir, not a model folder: pass it as --workdir, "
                                    f"or make a model folder with `darts-jax export --workdir {model_dir} --out DIR`")
        raise FileNotFoundError(f"{meta_path} not found: --model must be a folder written by `darts-jax export`")
    try:
        meta = json.loads(meta_path.read_text())
        config, genotype_data = meta["config"], meta["genotype"]
        space_name, model_data = config.get("space", "pcdarts"), config["model"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"{meta_path} is damaged ({type(err).__name__}: {err}); export the model again "
                         f"from its training run") from None
    space = get_space(space_name)
    model = config_lib.from_dict(space.config_type, model_data, f"{meta_path} config.model")
    genotype = space.genotype_from_dict(genotype_data, model, str(meta_path))
    template = jax.tree.map(ocp.utils.to_shape_dtype_struct, space.init_network(0, model, genotype))
    try:
        with ocp.StandardCheckpointer() as checkpointer:
            variables = checkpointer.restore(model_dir / "variables", template)
    except Exception as err:  # orbax/tensorstore raise many types for missing, truncated or foreign files
        raise ValueError(f"{model_dir / 'variables'}: the weights cannot be read "
                         f"({type(err).__name__}: {str(err).splitlines()[0][:200]}); export the model again "
                         f"from its training run") from None
    return space, model, genotype, variables

