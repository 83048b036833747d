"""Runs on a corpus folder: loaders for each phase, trained models back from a workdir, score files.

The CLI, the demo and the experiment scripts all go through these functions.
"""
from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from darts_jax import config as config_lib
from darts_jax import loops, parallel
from darts_jax.checkpoint import RunCheckpoints, export_model, load_model
from darts_jax.config import ModelConfig, SearchConfig, TrainConfig
from darts_jax.data.audio import fix_length, load_audio
from darts_jax.data.loader import BatchLoader, search_loaders
from darts_jax.data.protocols import load_partition
from darts_jax.genotype import Genotype, load_genotype
from darts_jax.metrics import evaluate_scores
from darts_jax.network import init_network
from darts_jax.scores import CmScores, read_asv_scores, write_cm_scores
from darts_jax.state import init_train_state

ASV_SCORES = "ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{partition}.gi.trl.scores.txt"


def _host_loader_options(model: ModelConfig, workers: int) -> dict:
    return dict(num_samples=model.num_samples, sample_rate=model.sample_rate, num_workers=workers,
                shard_index=jax.process_index(), shard_count=jax.process_count())


def eval_loader(data_dir, partition: str, model: ModelConfig, batch_size: int, workers: int = 4) -> BatchLoader:
    return BatchLoader(load_partition(data_dir, partition), parallel.check_global_batch(batch_size),
                       shuffle=False, drop_last=False, **_host_loader_options(model, workers))


def run_search(config: SearchConfig, data_dir, workdir, *, restart=False, monitor_dev=True, quiet=False,
               workers: int = 4) -> loops.RunResult:
    """Weights on trn_h, α/β on trn_t, dev EER at each epoch end (spec §5.1)."""
    per_host = parallel.check_global_batch(config.batch_size)
    weight_loader, arch_loader = search_loaders(data_dir, per_host, seed=config.seed,
                                                **_host_loader_options(config.model, workers))
    dev = eval_loader(data_dir, "dev", config.model, config.batch_size, workers) if monitor_dev else None
    return loops.search(config, weight_loader, arch_loader, workdir, dev_loader=dev, restart=restart, quiet=quiet)


def run_train(config: TrainConfig, data_dir, workdir, *, restart=False, monitor_dev=True, quiet=False,
              workers: int = 4) -> loops.RunResult:
    genotype = load_genotype(config.genotype, config.model.primitives)
    loader = BatchLoader(load_partition(data_dir, "train"), parallel.check_global_batch(config.batch_size),
                         seed=config.seed, **_host_loader_options(config.model, workers))
    dev = eval_loader(data_dir, "dev", config.model, config.batch_size, workers) if monitor_dev else None
    return loops.train(config, genotype, loader, workdir, dev_loader=dev, restart=restart, quiet=quiet)


def load_trained(workdir) -> tuple[TrainConfig, Genotype, dict]:
    """(config, genotype, variables) of the newest usable checkpoint of a training run."""
    workdir = Path(workdir)
    config_path = workdir / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{config_path} not found: --workdir must hold a `darts-jax train` run")
    config = config_lib.load_json(TrainConfig, config_path)
    genotype = Genotype.from_json((workdir / "genotype.json").read_text(), config.model.primitives,
                                  where=str(workdir / "genotype.json"))
    checkpoints = RunCheckpoints(workdir, config.keep_checkpoints)
    try:
        restored = checkpoints.restore_latest(jax.device_get(init_train_state(config, genotype)))
    finally:
        checkpoints.close()
    if restored is None:
        raise FileNotFoundError(f"{checkpoints.directory} holds no checkpoint: train first")
    state = restored[1]
    return config, genotype, {"params": state.params, "batch_stats": state.batch_stats}


def export_trained(workdir, out_dir) -> Path:
    config, genotype, variables = load_trained(workdir)
    return export_model(out_dir, config_lib.to_dict(config), genotype, variables)


def load_exported(model_dir):
    """(ModelConfig, genotype, variables) of a folder written by `export_trained`."""
    _, model, genotype, variables = load_model(model_dir, lambda m, g: init_network(0, m, g))
    return model, genotype, variables


def score_partition(model: ModelConfig, genotype: Genotype, variables: dict, data_dir, partition: str, out_path,
                    *, batch_size: int = 64, overwrite: bool = False) -> dict:
    """Scores every utterance of a partition, writes the ASVspoof score file, returns the metrics.

    The min t-DCF is included when the corpus has ASV scores for the partition.
    """
    scores = loops.evaluate(model, genotype, variables, eval_loader(data_dir, partition, model, batch_size))
    keys = ["bonafide" if label == 1 else "spoof" for label in scores.labels]
    write_cm_scores(out_path, scores.utt_ids, scores.attacks, keys, scores.scores, overwrite=overwrite)
    asv_path = Path(data_dir) / ASV_SCORES.format(partition=partition)
    asv = read_asv_scores(asv_path) if asv_path.exists() else None
    cm = CmScores(np.asarray(scores.utt_ids), np.asarray(scores.attacks), np.asarray(keys), scores.scores)
    return evaluate_scores(cm, asv)


def predict_files(model_dir, paths: list[str], batch_size: int = 16) -> list[tuple[str, float]]:
    """(path, bona fide logit) per audio file, with the training's first-4-s repeat padding."""
    model, genotype, variables = load_exported(model_dir)
    device = parallel.local_devices(1)
    params, batch_stats = parallel.replicate((variables["params"], variables["batch_stats"]), device)
    eval_step = parallel.compile_eval_step(model, genotype, device)
    results = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start:start + batch_size]
        wave_BxS = np.zeros((batch_size, model.num_samples), np.float32)
        for row, path in enumerate(chunk):
            wave_BxS[row] = fix_length(load_audio(path, model.sample_rate), model.num_samples)
        out = jax.device_get(eval_step(params, batch_stats, None, {"wave": wave_BxS[None]}))
        results += [(path, float(s)) for path, s in zip(chunk, out["score"][0])]
    return results
