"""The audio-visual pipeline on a SynthAV folder: pretrain and freeze the backbones and cache their taps,
then search, train and score the fusion space on the cached features with the generic tasks.

The search trains weights on `train` and the architecture on `dev` (as the STGS code), the training run
selects its epoch on `dev`, and `eval` is scored once, per category.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
from flax import serialization

from darts_jax.data.synthav.corpus import CATEGORIES, REAL, SPLITS, load_split
from darts_jax.data.synthav.features import (FeatureLoader, features_path, load_features, log_spectrogram,
                                             save_features, tap_columns)
from darts_jax.engine import parallel
from darts_jax.engine.config import to_dict
from darts_jax.spaces import get_space
from darts_jax.spaces.fusion import backbones as bb
from darts_jax.spaces.fusion.config import AUDIO_TAPS, VIDEO_TAPS
from darts_jax.spoofing.av_report import category_metrics
from darts_jax.spoofing.classification import roc_auc
from darts_jax.spoofing.metrics import compute_eer
from darts_jax.tasks import evaluate
from darts_jax.tasks.search import SearchConfig, search
from darts_jax.tasks.train import TrainConfig, train

REAL_VIDEO = ("RVRA", "RVFA", "LS")
REAL_AUDIO = ("RVRA", "FVRA", "LS")


def _normalised_frames(split, stats):
    frames = split.frames_NxTxHxW
    stats = stats or {"mean": float(frames.mean()), "std": float(frames.std())}
    return (frames - stats["mean"]) / stats["std"], stats


def _normalised_spectrogram(split, stats):
    spectrogram = log_spectrogram(split.audio_NxS)
    stats = stats or {"mean": spectrogram.mean(axis=(0, 1)).tolist(), "std": spectrogram.std(axis=(0, 1)).tolist()}
    return (spectrogram - np.asarray(stats["mean"], np.float32)) / np.asarray(stats["std"], np.float32), stats


def default_backbones(widths=(16, 32, 64), blocks: int = 1, grid: int = 4) -> list[bb.Backbone]:
    return [
        bb.Backbone("video", VIDEO_TAPS, bb.VideoResNet(tuple(widths), blocks, grid), _normalised_frames,
                    lambda categories: np.isin(categories, REAL_VIDEO).astype(np.int32)),
        bb.Backbone("audio", AUDIO_TAPS, bb.AudioResNet(tuple(widths), blocks, grid), _normalised_spectrogram,
                    lambda categories: np.isin(categories, REAL_AUDIO).astype(np.int32)),
    ]


def _unimodal_figures(logits, labels, categories) -> dict:
    """A backbone's own head on its stream's label, and per SynthAV category against RVRA."""
    score = logits[:, 1] - logits[:, 0]
    eer = compute_eer(score[labels == 1], score[labels == 0])[0]
    return {"stream_auc": roc_auc(score[labels == 1], score[labels == 0]), "stream_eer_percent": 100 * eer,
            "per_category_auc": {c: m["auc"] for c, m in category_metrics(score, categories).items()}}


def pretrain_backbones(data_dir, *, name: str = "backbones", widths=(16, 32, 64), blocks: int = 1,
                       grid: int = 4, length: int = 8, config: bb.PretrainConfig = bb.PretrainConfig(),
                       say=print) -> Path:
    """Pretrains each default backbone on its stream's label (train split), freezes it, and caches the taps
    of every split pooled to `length`, in `<data>/features/<name>.npz`. Refuses to replace a cache."""
    path = features_path(data_dir, name)
    if path.exists():
        raise ValueError(f"{path} exists: its backbones are already trained and frozen; pass another --name "
                         f"to train others (nothing was overwritten)")
    splits = {split: load_split(data_dir, split) for split in SPLITS}
    packed = {split: [] for split in SPLITS}
    taps, channels, info = [], [], {"widths": list(widths), "blocks": blocks, "grid": grid, "length": length,
                                    "pretrain": to_dict(config), "backbones": {}}
    weights_dir = Path(data_dir) / "backbones" / name
    weights_dir.mkdir(parents=True, exist_ok=True)
    for backbone in default_backbones(widths, blocks, grid):
        train_inputs, stats = backbone.inputs(splits["train"], None)
        variables = bb.pretrain(backbone, train_inputs, backbone.labels(splits["train"].categories), config, say)
        figures = {}
        for split_name, split in splits.items():
            inputs = train_inputs if split_name == "train" else backbone.inputs(split, stats)[0]
            features, logits = bb.apply_frozen(backbone, variables, inputs, length)
            packed[split_name].append(features)
            figures[split_name] = _unimodal_figures(logits, backbone.labels(split.categories), split.categories)
        taps += backbone.taps
        channels += bb.tap_channels(backbone, variables, train_inputs)
        (weights_dir / f"{backbone.name}.msgpack").write_bytes(serialization.to_bytes(variables))
        parameters = int(sum(np.size(v) for v in jax.tree.leaves(variables["params"])))
        info["backbones"][backbone.name] = {"normalisation": stats, "figures": figures, "parameters": parameters}
        say(f"{backbone.name} backbone: eval AUC on its stream {figures['eval']['stream_auc']:.3f}; "
            f"eval AUC per category vs RVRA " + ", ".join(f"{c} {a:.3f}" for c, a in
                                                          figures["eval"]["per_category_auc"].items()))
    save_features(path, {split: {"features": np.concatenate(packed[split], axis=-1), "labels": s.labels,
                                 "categories": s.categories, "clip_ids": s.clip_ids} for split, s in splits.items()},
                  taps, channels, info)
    say(f"features of {', '.join(taps)} ({sum(channels)} channels at length {length}) cached in {path}")
    return path


def with_cache_shapes(config, meta: dict):
    """`config` whose model reads the cache's tap widths and length (they are the cache's, not a choice)."""
    model = config.model
    tap_columns(meta, model.taps)  # names an unknown tap
    channels = tuple(meta["tap_channels"][meta["taps"].index(t)] for t in model.taps)
    return dataclasses.replace(config, model=dataclasses.replace(model, tap_channels=channels,
                                                                 length=int(meta["length"])))


def feature_loaders(data_dir, config, features_name: str = "backbones", eval_batch: int = 64,
                    categories=None) -> dict:
    """{train, dev (shuffled: weights, architecture), train_pass, dev_pass, eval (in order)} over the model's
    taps, of the clips of `categories` only when given (e.g. RVRA and LS: the lip-sync task alone)."""
    meta, splits = load_features(features_path(data_dir, features_name))
    columns = tap_columns(meta, config.model.taps)
    batch = parallel.check_global_batch(config.optim.batch_size)
    unknown = sorted(set(categories or ()) - set(CATEGORIES))
    if unknown or (categories and REAL not in categories):
        raise ValueError(f"categories: {list(categories)} must be SynthAV categories ({', '.join(CATEGORIES)}) "
                         f"and include {REAL}, the real clips")

    def loader(split, batch_size, shuffle, salt):
        parts = splits[split]
        rows = np.isin(parts["categories"], categories) if categories else slice(None)
        return FeatureLoader(parts["features"][rows][..., columns], parts["labels"][rows], parts["categories"][rows],
                             parts["clip_ids"][rows], batch_size, seed=config.loop.seed * 10 + salt, shuffle=shuffle)

    return {"train": loader("train", batch, True, 0), "dev": loader("dev", batch, True, 1),
            "train_pass": loader("train", eval_batch, False, 2), "dev_pass": loader("dev", eval_batch, False, 2),
            "eval": loader("eval", eval_batch, False, 3)}


# The dev AUC as an epoch-selection value (lower is better, as the driver keeps it): a LoopConfig.select_by.
DEV_SELECTION = "dev_auc_shortfall"


def dev_metrics(scores: evaluate.Scores) -> dict:
    real, fake = scores.score_diffs[scores.labels == 1], scores.score_diffs[scores.labels == 0]
    auc = roc_auc(real, fake)
    return {"dev_eer_percent": 100 * compute_eer(real, fake)[0], "dev_auc": auc, DEV_SELECTION: 1.0 - auc,
            "dev_accuracy": float(np.mean((scores.score_diffs > 0) == (scores.labels == 1)))}


def record_data_selection(workdir, data_dir, features_name: str, categories, restart: bool) -> None:
    """Writes which clips a run reads (`fusion_data.json`), or refuses a resumed run that would read others."""
    path = Path(workdir) / "fusion_data.json"
    selection = {"data": str(Path(data_dir).resolve()), "features": features_name,
                 "categories": sorted(categories) if categories else "all"}
    if path.is_file() and not restart:
        saved = json.loads(path.read_text())
        if saved != selection:
            raise ValueError(f"{path}: the run in {workdir} reads {saved}, this command {selection}; use the same "
                             f"--data, --features and --categories to resume, or --restart")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(selection, indent=1) + "\n")


def run_fusion_search(config: SearchConfig, data_dir, workdir, *, features_name="backbones", categories=None,
                      restart=False, quiet=False):
    record_data_selection(workdir, data_dir, features_name, categories, restart)
    config = with_cache_shapes(config, load_features(features_path(data_dir, features_name), ())[0])
    loaders = feature_loaders(data_dir, config, features_name, categories=categories)
    return search(get_space(config.space), config, loaders["train"], loaders["dev"], workdir,
                  dev_loader=loaders["dev_pass"], dev_metrics=dev_metrics, restart=restart, quiet=quiet)


def run_fusion_train(config: TrainConfig, data_dir, workdir, *, features_name="backbones", categories=None,
                     restart=False, quiet=False):
    if not config.genotype:
        raise ValueError("--genotype: give the fusion genotype to train (a search's genotype.json or its text form)")
    record_data_selection(workdir, data_dir, features_name, categories, restart)
    config = with_cache_shapes(config, load_features(features_path(data_dir, features_name), ())[0])
    space = get_space(config.space)
    genotype = space.load_genotype(config.genotype, config.model)
    loaders = feature_loaders(data_dir, config, features_name, categories=categories)
    return train(space, config, genotype, loaders["train"], workdir, dev_loader=loaders["dev_pass"],
                 dev_metrics=dev_metrics, restart=restart, quiet=quiet)


def score_fusion(space, config, genotype, variables, data_dir, *, split: str = "eval",
                 features_name: str = "backbones") -> tuple[evaluate.Scores, dict]:
    """Scores of a trained fusion network on every clip of one split, and its per-category figures."""
    loaders = feature_loaders(data_dir, config, features_name)
    if split not in SPLITS:
        raise ValueError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    loader = loaders["eval" if split == "eval" else f"{split}_pass"]
    scores = evaluate.evaluate(space, config.model, genotype, variables, loader)
    return scores, category_metrics(scores.score_diffs, scores.attacks)


def write_scores(scores: evaluate.Scores, path, provenance: dict, overwrite: bool = False) -> Path:
    """`clip_id category label score` lines and a companion JSON; an existing file is refused."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it, or --out for another file")
    path.write_text("".join(f"{u} {a} {'real' if a == REAL else 'fake'} {s:.6f}\n"
                            for u, a, s in zip(scores.utt_ids, scores.attacks, scores.score_diffs)))
    path.with_suffix(path.suffix + ".json").write_text(json.dumps(provenance, indent=1) + "\n")
    return path
