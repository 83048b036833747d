"""Runs on a corpus folder: loaders for each phase, the dev-EER monitor, trained models back from a
workdir, and score files for any corpus the readers know.

The CLI, the demo and the experiment scripts all go through these functions.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax
import numpy as np

from darts_jax.data.check import check_audio
from darts_jax.data.loader import BatchLoader, search_loaders
from darts_jax.data.protocols import load_asvspoof2021, load_in_the_wild, load_partition
from darts_jax.engine import parallel
from darts_jax.engine.checkpoint import CheckpointError, RunCheckpoints
from darts_jax.engine.config import read_json
from darts_jax.spaces import get_space
from darts_jax.spoofing.calibration import MODEL_FILE as CALIBRATION_FILE
from darts_jax.spoofing.calibration import (
    model_calibration,
    read_calibration,
    store_calibration,
)
from darts_jax.spoofing.export import check_new_folder, export_model, load_model
from darts_jax.spoofing.metrics import compute_eer, evaluate_scores
from darts_jax.spoofing.portable import export_stablehlo
from darts_jax.spoofing.scores import check_writable, read_asv_scores, write_scores
from darts_jax.tasks import common, evaluate
from darts_jax.tasks.search import SearchConfig, search
from darts_jax.tasks.seed_search import SeedSearchConfig, search_seeds
from darts_jax.tasks.train import TrainConfig, init_train_state, train

ASV_SCORES = "ASVspoof2019_LA_asv_scores/ASVspoof2019.LA.asv.{partition}.gi.trl.scores.txt"
# --corpus: the 2019 LA folder's partitions, or one evaluation corpus with its keys.
CORPORA = ("2019-la", "2021-la", "2021-df", "itw")


def _host_loader_options(model, workers: int) -> dict:
    return dict(num_samples=model.num_samples, sample_rate=model.sample_rate, num_workers=workers,
                shard_index=jax.process_index(), shard_count=jax.process_count())


def corpus_utterances(data_dir, corpus: str = "2019-la", partition: str = "eval") -> list:
    """The trials of `corpus` in `data_dir` (`partition` applies to 2019 LA only)."""
    if corpus == "2019-la":
        return load_partition(data_dir, partition)
    if corpus in ("2021-la", "2021-df"):
        return load_asvspoof2021(data_dir, corpus[-2:].upper())
    if corpus == "itw":
        return load_in_the_wild(data_dir)
    raise ValueError(f"corpus: {corpus!r} is not one of {', '.join(CORPORA)}")


def eval_loader(utterances, model, batch_size: int, workers: int = 4, trim_silence: bool = False) -> BatchLoader:
    return BatchLoader(utterances, parallel.check_global_batch(batch_size), shuffle=False, drop_last=False,
                       trim_silence=trim_silence, **_host_loader_options(model, workers))


def dev_metrics(scores: evaluate.Scores) -> dict:
    """The epoch-end dev figures: official EER of the bona fide logit, and accuracy of the argmax."""
    eer = compute_eer(scores.scores[scores.labels == 1], scores.scores[scores.labels == 0])[0]
    return {"dev_eer_percent": 100 * eer,
            "dev_accuracy": float(np.mean((scores.score_diffs > 0) == (scores.labels == 1)))}


def _dev(data_dir, model, batch_size, workers, monitor_dev: bool) -> dict:
    if not monitor_dev:
        return {}
    return {"dev_loader": eval_loader(load_partition(data_dir, "dev"), model, batch_size, workers),
            "dev_metrics": dev_metrics}


def refuse_bad_audio(data_dir, partitions, workers: int = 4) -> None:
    """Decodes every file of the partitions a run reads, before it starts: a run does not begin on a corpus
    that `check-data` would fail, only to stop at the first bad file hours later."""
    utterances = [utt for partition in partitions for utt in load_partition(data_dir, partition)]
    problems = check_audio(utterances, num_workers=workers)
    if problems:
        shown = "\n  ".join(problems[:5]) + (f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ValueError(f"{len(problems)} audio file(s) this run would read cannot be used:\n  {shown}\n"
                         f"Fix them or remove them from the protocol; `darts-jax check-data --data {data_dir}` "
                         f"lists every problem")


def run_search(config: SearchConfig, data_dir, workdir, *, restart=False, monitor_dev=True, quiet=False,
               workers: int = 4) -> common.TaskResult:
    """Weights on trn_h, α/β on trn_t, dev EER at each epoch end (spec §5.1)."""
    refuse_bad_audio(data_dir, ("train", "dev") if monitor_dev else ("train",), workers)
    weight_loader, arch_loader = _search_halves(config, data_dir, config.loop.seed, workers)
    return search(get_space(config.space), config, weight_loader, arch_loader, workdir, restart=restart,
                  quiet=quiet, **_dev(data_dir, config.model, config.optim.batch_size, workers, monitor_dev))


def _search_halves(config: SearchConfig, data_dir, seed: int, workers: int):
    """(weight, architecture) loaders of this host's share of the global batch, in `seed`'s order."""
    per_host = parallel.check_global_batch(config.optim.batch_size)
    return search_loaders(data_dir, per_host, seed=seed, **_host_loader_options(config.model, workers))


def run_seed_searches(config: SeedSearchConfig, data_dir, workdir, *, restart=False, quiet=False,
                      workers: int = 4) -> list[common.TaskResult]:
    """`run_search` for every seed of `config` at once, stacked in one program (tasks.seed_search)."""
    refuse_bad_audio(data_dir, ("train",), workers)
    pairs = [_search_halves(config.search, data_dir, seed, workers) for seed in config.seeds]
    return search_seeds(get_space(config.search.space), config, [w for w, _ in pairs], [a for _, a in pairs],
                        workdir, restart=restart, quiet=quiet)


def run_train(config: TrainConfig, data_dir, workdir, *, restart=False, monitor_dev=True, quiet=False,
              workers: int = 4) -> common.TaskResult:
    refuse_bad_audio(data_dir, ("train", "dev") if monitor_dev else ("train",), workers)
    space = get_space(config.space)
    genotype = space.load_genotype(config.genotype, config.model)
    loader = BatchLoader(load_partition(data_dir, "train"), parallel.check_global_batch(config.optim.batch_size),
                         seed=config.loop.seed, **_host_loader_options(config.model, workers))
    return train(space, config, genotype, loader, workdir, restart=restart, quiet=quiet,
                 **_dev(data_dir, config.model, config.optim.batch_size, workers, monitor_dev))


def load_trained(workdir, checkpoint: str = "last") -> tuple[TrainConfig, object, dict]:
    """(config, genotype, variables) of a training run's checkpoint (see `load_trained_checkpoint`)."""
    return load_trained_checkpoint(workdir, checkpoint)[:3]


def load_trained_checkpoint(workdir, checkpoint: str = "last"):
    """(config, genotype, variables, provenance) of a training run's checkpoint.

    `checkpoint` is "last" (the newest usable one), "best" (the epoch end with the lowest
    `loop.select_by`, the dev EER by default) or a step number; `provenance` says which was read and by
    what rule, for the score file's companion JSON.
    """
    workdir = Path(workdir)
    config = common.load_run_config(TrainConfig, workdir / "config.json")
    space = get_space(config.space)
    genotype_path = workdir / "genotype.json"
    if not genotype_path.is_file():
        raise FileNotFoundError(f"{genotype_path} not found: --workdir must hold a `darts-jax train` run")
    genotype = space.genotype_from_dict(read_json(genotype_path), config.model, str(genotype_path))
    template = jax.device_get(init_train_state(space, config, genotype))
    if checkpoint == "last":
        checkpoints = RunCheckpoints(workdir, config.loop.keep_checkpoints)
        try:
            restored = checkpoints.restore_latest(template)
        finally:
            checkpoints.close()
        if restored is None:
            raise FileNotFoundError(f"{checkpoints.directory} holds no checkpoint: train first")
        step, state, meta = restored[0], restored[1], restored[2]
        rule = "the newest usable checkpoint"
    else:
        state, meta, step, rule = _selected_checkpoint(workdir, config, checkpoint, template)
    provenance = {"workdir": str(workdir.resolve()), "checkpoint": checkpoint, "step": step,
                  "epoch": meta.get("epoch"), "rule": rule, "summary": meta.get("summary")}
    return config, genotype, {"params": state.params, "batch_stats": state.batch_stats}, provenance


def _selected_checkpoint(workdir, config: TrainConfig, checkpoint: str, template):
    """(state, meta, step, rule) of checkpoint "best" or of a step number (kept as newest or as best)."""
    best = RunCheckpoints(workdir, config.loop.keep_best or 1, lowest=config.loop.select_by)
    newest = RunCheckpoints(workdir, config.loop.keep_checkpoints)
    try:
        if checkpoint == "best":
            step = best.best_step()
            if step is None:
                raise FileNotFoundError(
                    f"{best.directory} holds no checkpoint: the run kept none by {config.loop.select_by} (it needs "
                    f"a dev set, and --keep-best above 0); use --checkpoint last")
            rule = f"the epoch end with the lowest {config.loop.select_by} among those kept (ties: the later)"
            return (*best.restore(step, template), step, rule)
        if not checkpoint.isdigit():
            raise ValueError(f"--checkpoint: {checkpoint!r} must be last, best or a step number")
        step = int(checkpoint)
        source = best if step in best.steps() and step not in newest.steps() else newest
        if step not in source.steps():
            raise CheckpointError(f"{workdir} keeps no checkpoint of step {step}: newest {newest.steps()}, "
                                  f"best by {config.loop.select_by} {best.steps()}")
        return (*source.restore(step, template), step, f"step {step}, as asked")
    finally:
        best.close()
        newest.close()


def export_trained(workdir, out_dir, calibration=None) -> Path:
    config, genotype, variables = load_trained(workdir)
    return export_model(out_dir, config, genotype, variables, calibration=calibration)


EXPORT_FORMATS = ("folder", "stablehlo")


def export(out_dir, *, workdir=None, model_dir=None, fmt: str = "folder", calibration_path=None) -> Path:
    """A model folder or a portable StableHLO folder (darts_jax.spoofing.portable), from a training run
    or from a model folder, with the calibration file `calibration_path` stored in it when given."""
    if (workdir is None) == (model_dir is None):
        raise ValueError("give exactly one of --workdir (a training run) or --model (a model folder)")
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(EXPORT_FORMATS)}")
    calibration = None if calibration_path is None else read_calibration(calibration_path)
    out_dir = check_new_folder(out_dir)
    if fmt == "folder" and workdir is not None:
        return export_trained(workdir, out_dir, calibration)
    if fmt == "folder":
        # A copy of the folder, with the new calibration in place of any it had.
        load_model(model_dir)  # refuses anything but a readable model folder before copying
        shutil.copytree(model_dir, out_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns(CALIBRATION_FILE))
        store_calibration(out_dir, calibration or model_calibration(model_dir))
        return out_dir.resolve()
    if workdir is not None:
        config, genotype, variables = load_trained(workdir)
        space, model = get_space(config.space), config.model
    else:
        space, model, genotype, variables = load_model(model_dir)
        calibration = calibration or model_calibration(model_dir)
    return export_stablehlo(space, model, genotype, variables, out_dir, calibration)


def score_corpus(space, model, genotype, variables: dict, data_dir, out_path, *, corpus: str = "2019-la",
                 partition: str = "eval", batch_size: int = 64, overwrite: bool = False,
                 provenance: dict | None = None, trim_silence: bool = False) -> dict:
    """Scores every trial of a corpus, writes the ASVspoof score file, returns the metrics.

    The min t-DCF is included when a 2019 LA folder has ASV scores for the partition. With `provenance`
    (from `load_trained_checkpoint`), `<out_path>.json` records what was scored. `trim_silence` scores
    each file without its leading and trailing non-speech (darts_jax.data.audio.trim_silence).
    """
    check_writable(out_path, overwrite)  # before the work, not after scoring a whole partition
    utterances = corpus_utterances(data_dir, corpus, partition)
    loader = eval_loader(utterances, model, batch_size, trim_silence=trim_silence)
    scores = evaluate.evaluate(space, model, genotype, variables, loader)
    write_scores(out_path, scores, overwrite=overwrite)
    if provenance is not None:
        # What was scored, beside the scores: which checkpoint of which run, chosen by what rule.
        companion = {**provenance, "corpus": corpus, "partition": partition if corpus == "2019-la" else None,
                     "data": str(Path(data_dir).resolve()), "trim_silence": trim_silence}
        Path(f"{out_path}.json").write_text(json.dumps(companion, indent=2) + "\n")
    asv_path = Path(data_dir) / ASV_SCORES.format(partition=partition)
    asv = read_asv_scores(asv_path) if corpus == "2019-la" and asv_path.exists() else None
    return evaluate_scores(scores, asv)
