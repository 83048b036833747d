"""The SynthAV protocol of STGS-BMNAS: for each seed, search, retrain and score four fusion models alike,

- `audio` and `video`: the search restricted to one stream's taps (the single-modality models),
- `bmnas`: BM-NAS' softmax relaxation over all eight taps,
- `stgs`: straight-through Gumbel-softmax with M draws (gumbel_st_mc, constant λ = 10, M = 15 by default),

on the whole corpus (`task="all"`) or on the lip-sync task alone (`task="lipsync"`: RVRA against LS, the
planted pair, where only a model that fuses both streams can do better than chance). Every model of a seed
shares that seed (initialisation, batches and draws), so the comparisons are paired.

Every model gets the same recipe: the same dropout, weight decay and widths, and the retrained network
scored on eval is the one of its epoch of best dev AUC (`select="best"`), never chosen on eval.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from darts_jax.data.synthav.corpus import REAL
from darts_jax.data.synthav.features import features_path, load_features
from darts_jax.engine.config import replace_fields, with_fields
from darts_jax.engine.state import count_params
from darts_jax.spaces import get_space
from darts_jax.spaces.fusion import FusionConfig
from darts_jax.spaces.fusion.config import AUDIO_TAPS, VIDEO_TAPS
from darts_jax.spoofing.av_pipeline import (DEV_SELECTION, run_fusion_search, run_fusion_train, score_fusion,
                                           with_cache_shapes)
from darts_jax.spoofing.pipeline import load_trained_checkpoint
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.train import TrainConfig

FUSION = "fusion"
TASKS = {"all": None, "lipsync": ("RVRA", "LS")}
# name -> (candidate taps, sampler)
MODELS = {"audio": (AUDIO_TAPS, "gumbel_st_mc"), "video": (VIDEO_TAPS, "gumbel_st_mc"),
          "bmnas": (VIDEO_TAPS + AUDIO_TAPS, "darts"), "stgs": (VIDEO_TAPS + AUDIO_TAPS, "gumbel_st_mc")}


@dataclasses.dataclass(frozen=True)
class ProtocolConfig:
    task: str = "lipsync"
    search_epochs: int = 8
    train_epochs: int = 20
    channels: int = 128
    batch_size: int = 16
    sampler_samples: int = 15
    tau: float = 10.0
    features: str = "backbones"
    dropout: float = 0.2  # of the reshape layers and fusion ops, in search and retraining
    weight_decay: float = 3e-4  # of the weights, in search and retraining
    select: str = "best"  # the retrained epoch scored: "best" dev AUC, or the "last"

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task: {self.task!r} is not one of {', '.join(TASKS)}")
        if self.select not in ("best", "last"):
            raise ValueError(f"select: {self.select!r} must be 'best' (the epoch of best dev AUC) or 'last'")


def class_weights(train_categories, task: str) -> tuple[float, float]:
    """(fake, real) loss weights that balance the task's real and fake training clips: (1, 4) on a corpus
    of five equal categories, (1, 1) on the lip-sync task, whatever extra lip-sync clips train has."""
    categories = np.asarray(train_categories)
    if TASKS[task]:
        categories = categories[np.isin(categories, TASKS[task])]
    real = int(np.sum(categories == REAL))
    if real == 0 or real == categories.size:
        raise ValueError(f"task {task!r}: the training clips need both {REAL} and fake ones, found "
                         f"{real} {REAL} of {categories.size}")
    return (1.0, (categories.size - real) / real)


def run_model(name: str, seed: int, data_dir, workdir, config: ProtocolConfig, quiet: bool = True) -> dict:
    """Searches, trains and scores one model of the protocol; resumes what an earlier call left."""
    taps, sampler = MODELS[name]
    space = get_space(FUSION)
    model = FusionConfig(taps=taps, channels=config.channels, dropout=config.dropout)
    categories = TASKS[config.task]
    meta, splits = load_features(features_path(data_dir, config.features), ("categories",))
    weights = class_weights(splits["train"]["categories"], config.task)
    common = dict(seed=seed, batch_size=config.batch_size, class_weights=weights,
                  weight_decay=config.weight_decay)
    search_config = replace_fields(SearchConfig(model=model, space=FUSION), dict(space.search_defaults), strict=True)
    sampling = {} if sampler == "darts" else dict(sampler_samples=config.sampler_samples, tau_start=config.tau)
    search_config = with_fields(search_config, epochs=config.search_epochs, sampler=sampler, **sampling, **common)
    run_dir = Path(workdir) / f"seed{seed}" / name
    found = run_fusion_search(search_config, data_dir, run_dir / "search", features_name=config.features,
                              categories=categories, quiet=quiet)
    _stop_if_interrupted(found, run_dir / "search")
    train_config = replace_fields(TrainConfig(model=model, space=FUSION), dict(space.train_defaults), strict=True)
    train_config = with_fields(train_config, epochs=config.train_epochs, select_by=DEV_SELECTION,
                               genotype=str(run_dir / "search" / "genotype.json"), **common)
    trained = run_fusion_train(train_config, data_dir, run_dir / "train", features_name=config.features,
                               categories=categories, quiet=quiet)
    _stop_if_interrupted(trained, run_dir / "train")
    scored_config = with_cache_shapes(train_config, meta)
    _, genotype, variables, provenance = load_trained_checkpoint(run_dir / "train", config.select)
    scores, metrics = score_fusion(space, scored_config, genotype, variables, data_dir,
                                   features_name=config.features)
    result = {"model": name, "seed": seed, "genotype": space.genotype_text(genotype),
              "taps_used": list(genotype.taps_used), "fusion_parameters": count_params(trained.state.params),
              "selected": {"checkpoint": config.select, "epoch": provenance["epoch"], "step": provenance["step"],
                           "dev": provenance["summary"]},
              "metrics": metrics, "clip_ids": scores.utt_ids.tolist(), "categories": scores.attacks.tolist(),
              "scores": scores.score_diffs.tolist()}
    (run_dir / "result.json").write_text(json.dumps(result) + "\n")
    return result


def _stop_if_interrupted(result, workdir) -> None:
    if result.interrupted:
        raise SystemExit(f"{workdir}: stopped by a signal, its checkpoint saved; run the protocol again to resume")


def fuses_both_streams(taps_used) -> bool:
    return any(t in VIDEO_TAPS for t in taps_used) and any(t in AUDIO_TAPS for t in taps_used)


def planted_pair_summary(results: list[dict], fused: str = "stgs", category: str = "LS") -> dict:
    """Per seed: does the fused search pick an audio and a video tap, and its `category` AUC minus the best
    single-modality model's; over seeds the counts and the paired differences."""
    by_seed = {}
    for r in results:
        by_seed.setdefault(r["seed"], {})[r["model"]] = r
    rows = []
    for seed, models in sorted(by_seed.items()):
        best_single = max(models[m]["metrics"][category]["auc"] for m in ("audio", "video"))
        fused_auc = models[fused]["metrics"][category]["auc"]
        rows.append({"seed": seed, "both_streams": fuses_both_streams(models[fused]["taps_used"]),
                     "fused_auc": fused_auc, "audio_auc": models["audio"]["metrics"][category]["auc"],
                     "video_auc": models["video"]["metrics"][category]["auc"], "difference": fused_auc - best_single})
    differences = np.array([r["difference"] for r in rows])
    return {"rows": rows, "seeds_fusing_both": int(sum(r["both_streams"] for r in rows)),
            "seeds_beating_single": int(np.sum(differences > 0)), "mean_difference": float(differences.mean()),
            "min_difference": float(differences.min())}
