"""The demo: the whole method on the built-in SynthSpoof corpus, sized for a 2-core CPU.

Generate the small corpus (cached), search with PC-DARTS, derive the genotype, train it from scratch,
score the eval partition (with attacks unseen in training) and write a report. Every phase resumes
from its checkpoints, so an interrupted demo continues where it stopped when run again.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from darts_jax.data.audio import SAMPLE_RATE
from darts_jax.data.synthspoof.corpus import FORMAT_VERSION as CORPUS_FORMAT
from darts_jax.data.synthspoof.corpus import make_corpus
from darts_jax.engine.config import LoopConfig, OptimConfig, read_json
from darts_jax.spaces import get_space
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.network import count_network_params
from darts_jax.spaces.pcdarts2d.plots import architecture_section, collapse_section, read_genotype_records
from darts_jax.spoofing import pipeline, report
from darts_jax.spoofing.baselines import GmmConfig, baseline_section, lfcc_gmm_baseline
from darts_jax.spoofing.scores import read_cm_scores
from darts_jax.spoofing.silence import silence_only_baseline, silence_section
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.train import TrainConfig

# The CPU budget is 15 minutes for everything, compilation included: the search sees 1 s of each file
# and smaller networks than the paper (4 s, 4/16); training and scoring read the paper's 4 s, the audio
# the LFCC-GMM baseline is given too (on 1 s the trained network stayed near chance: 46 % eval EER).
SEARCH_AUDIO = SAMPLE_RATE  # 1 s
TRAIN_AUDIO = 4 * SAMPLE_RATE


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    corpus_size: str = "small"
    corpus_seed: int = 0
    search: SearchConfig = SearchConfig(
        model=ModelConfig(layers=3, init_channels=8, num_samples=SEARCH_AUDIO, mask=True),
        loop=LoopConfig(epochs=6, log_every=5), optim=OptimConfig(batch_size=32, lr=1e-2, lr_min=1e-3),
        warmup_epochs=2)
    train: TrainConfig = TrainConfig(
        model=ModelConfig(layers=4, init_channels=16, num_samples=TRAIN_AUDIO, mask=True),
        loop=LoopConfig(epochs=16, log_every=10), optim=OptimConfig(batch_size=32, lr=1e-3, lr_min=1e-4))


PAPER = {"source": "Ge et al., Interspeech 2021: ASVspoof 2019 LA eval, LFCC, 16 layers / 64 channels",
         "eer_percent": 4.96, "min_tdcf": 0.0914, "params": 7_515_682}


def run_demo(workdir: str | Path = "runs/demo", demo: DemoConfig = DemoConfig(), say=None) -> dict:
    """Runs (or resumes) every phase; returns the eval metrics with the report's path under 'report'."""
    say = say or (lambda message: print(message, file=sys.stderr, flush=True))
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    # Time spent per phase, summed over every run of the demo in this workdir (phases resume).
    timings_path = workdir / "timings.json"
    timings = read_json(timings_path) if timings_path.exists() else {}

    def phase(name, fn):
        say(f"[demo] {name} ...")
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        timings[name] = timings.get(name, 0.0) + elapsed
        timings_path.write_text(json.dumps(timings, indent=2) + "\n")
        say(f"[demo] {name} done in {elapsed:.0f} s")
        return result

    data = phase("corpus", lambda: make_corpus(workdir / "data", size=demo.corpus_size, seed=demo.corpus_seed))
    search = phase("search", lambda: pipeline.run_search(demo.search, data, workdir / "search", monitor_dev=False))
    say(f"[demo] searched genotype: {get_space(demo.search.space).genotype_text(search.genotype)}")
    train_config = dataclasses.replace(demo.train, genotype=str(workdir / "search" / "genotype.json"))
    phase("train", lambda: pipeline.run_train(train_config, data, workdir / "train"))
    _, genotype, variables = pipeline.load_trained(workdir / "train")
    score_file = workdir / "scores-eval.txt"
    # The demo's own output: a re-run replaces the score file it wrote before.
    metrics = phase("evaluate", lambda: pipeline.score_corpus(
        get_space(train_config.space), train_config.model, genotype, variables, data, score_file, overwrite=True))
    # The silence audit: the same model without leading/trailing silence, and silence alone.
    trimmed = phase("silence audit", lambda: pipeline.score_corpus(
        get_space(train_config.space), train_config.model, genotype, variables, data,
        workdir / "scores-eval-trimmed.txt", overwrite=True, trim_silence=True))
    silence = silence_section(metrics, trimmed, silence_only_baseline(data))
    gmm_config = GmmConfig(num_samples=train_config.model.num_samples)
    corpus = {"size": demo.corpus_size, "seed": demo.corpus_seed, "format_version": CORPUS_FORMAT}
    gmm = phase("LFCC-GMM baseline", lambda: _cached_gmm(workdir / "lfcc-gmm.json", data, gmm_config, corpus))
    records = read_genotype_records(workdir / "search" / "genotypes.jsonl")
    epochs = [json.loads(line) for line in (workdir / "search" / "epochs.jsonl").read_text().splitlines()]
    params = count_network_params(train_config.model, genotype)
    report_path = report.write_report(
        workdir / "report", title="darts_jax demo: PC-DARTS on SynthSpoof",
        architecture=architecture_section(genotype, params, records, demo.search.model.primitives),
        params=params, metrics=metrics, timings=timings, cm_scores=read_cm_scores(score_file),
        settings=_settings(demo), reference=PAPER,
        sections=baseline_section(metrics, gmm, gmm_config) + collapse_section(epochs) + silence)
    tdcf = "n/a" if metrics["min_tdcf"] is None else f"{metrics['min_tdcf']:.4f}"
    say(f"[demo] eval EER {metrics['eer_percent']:.2f} % (min t-DCF {tdcf}, simulated ASV scores; LFCC-GMM "
        f"{gmm['eer_percent']:.2f} %); report: {report_path}")
    return {**metrics, "trimmed_eer_percent": trimmed["eer_percent"], "gmm_eer_percent": gmm["eer_percent"],
            "report": str(report_path), "timings": timings}


def _cached_gmm(path: Path, data: Path, config: GmmConfig, corpus: dict) -> dict:
    """The LFCC-GMM's eval report, fitted once per workdir (a minute of CPU) and kept beside its settings
    and the corpus's; either changed, it is fitted again."""
    settings = {**dataclasses.asdict(config), "corpus": corpus}
    if path.exists():
        cached = read_json(path)
        if cached.get("settings") == settings:
            return cached["eval"]
    report_eval = lfcc_gmm_baseline(data, ("eval",), config)["eval"]
    path.write_text(json.dumps({"settings": settings, "eval": report_eval}, indent=2) + "\n")
    return report_eval


def _settings(demo: DemoConfig) -> dict:
    s, t = demo.search, demo.train
    return {
        "corpus": f"SynthSpoof {demo.corpus_size} (seed {demo.corpus_seed})",
        "audio": f"first {s.model.num_samples / s.model.sample_rate:g} s in the search, "
                 f"{t.model.num_samples / t.model.sample_rate:g} s in training and scoring, repeat-padded",
        "front end": f"{s.model.frontend.upper()}, frequency masking {'on' if s.model.mask else 'off'}",
        "search": f"{s.model.layers} cells, {s.model.init_channels} channels, K = {s.model.partial_k}, "
                  f"batch {s.optim.batch_size}, {s.loop.epochs} epochs ({s.warmup_epochs} warm-up)",
        "train": f"{t.model.layers} cells, {t.model.init_channels} channels, batch {t.optim.batch_size}, "
                 f"{t.loop.epochs} epochs, drop path to {t.drop_path}",
    }
