"""Seeds as an axis of the experiment: search -> train -> evaluate for N seeds, and one table of the spread.

A single EER from a single seed is not a result (seeds move PC-DARTS' EER by whole points); the sweep
reports each seed's EER, min t-DCF and genotype, their mean and standard deviation, a bootstrap 95 %
confidence interval of the mean pooled EER that resamples seeds and trials (so it widens with both the
seed spread and the size of the eval set), and how often each genotype and each op on each edge was
chosen. The searches run stacked in one program (`tasks.seed_search`, `vmapped=True`) or one after
another; the trainings always run one after another, since each seed's derived network is another
program. Every phase resumes, so a stopped sweep continues where it stopped.
"""
from __future__ import annotations

import collections
import json
import time
from pathlib import Path

import numpy as np

from darts_jax.engine.config import with_fields
from darts_jax.spaces import get_space
from darts_jax.spoofing import pipeline
from darts_jax.spoofing.metrics import compute_eer
from darts_jax.spoofing.scores import read_cm_scores
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.seed_search import SeedSearchConfig
from darts_jax.tasks.train import TrainConfig

BOOTSTRAP_RESAMPLES = 2000


def run_sweep(search: SearchConfig, train: TrainConfig, seeds, data_dir, workdir, *, vmapped: bool = True,
              workers: int = 4, say=print) -> dict:
    """Runs (or resumes) every seed's pipeline; writes `sweep.json` and `sweep.md`; returns the summary."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    space = get_space(search.space)
    timings = {}
    start = time.perf_counter()
    if vmapped:
        pipeline.run_seed_searches(SeedSearchConfig(search, tuple(seeds)), data_dir, workdir / "search",
                                   quiet=True, workers=workers)
        genotype_files = {seed: workdir / "search" / f"seed-{seed}" / "genotype.json" for seed in seeds}
    else:
        genotype_files = {}
        for seed in seeds:
            say(f"[sweep] seed {seed}: search")
            pipeline.run_search(with_fields(search, seed=seed), data_dir, workdir / f"seed-{seed}" / "search",
                                monitor_dev=False, quiet=True, workers=workers)
            genotype_files[seed] = workdir / f"seed-{seed}" / "search" / "genotype.json"
    timings["search_s"] = time.perf_counter() - start
    rows = []
    start = time.perf_counter()
    for seed in seeds:
        say(f"[sweep] seed {seed}: train and score")
        train_config = with_fields(train, seed=seed, genotype=str(genotype_files[seed]))
        run_dir = workdir / f"seed-{seed}"
        pipeline.run_train(train_config, data_dir, run_dir / "train", monitor_dev=False, quiet=True, workers=workers)
        _, genotype, variables = pipeline.load_trained(run_dir / "train")
        score_file = run_dir / "scores-eval.txt"
        metrics = pipeline.score_corpus(space, train_config.model, genotype, variables, data_dir, score_file,
                                        overwrite=True)
        rows.append({"seed": seed, "eer_percent": metrics["eer_percent"], "min_tdcf": metrics["min_tdcf"],
                     "genotype": space.genotype_to_dict(genotype), "genotype_text": space.genotype_text(genotype),
                     "scores": str(score_file)})
    timings["train_and_score_s"] = time.perf_counter() - start
    summary = {**summarise(rows, np.random.default_rng(0)), "timings": timings,
               "searches": "stacked (vmap)" if vmapped else "sequential"}
    (workdir / "sweep.json").write_text(json.dumps(summary, indent=2) + "\n")
    (workdir / "sweep.md").write_text(sweep_table(summary))
    return summary


def summarise(rows: list[dict], rng: np.random.Generator) -> dict:
    """Spread of the per-seed results; `rows` carry seed, eer_percent, min_tdcf, genotype(_text), scores."""
    eers = np.array([row["eer_percent"] for row in rows])
    tdcfs = [row["min_tdcf"] for row in rows if row["min_tdcf"] is not None]
    trials = [read_cm_scores(row["scores"]) for row in rows]
    low, high = bootstrap_mean_eer_ci(trials, rng)
    return {
        "per_seed": rows,
        "eer_percent_mean": float(eers.mean()),
        "eer_percent_std": float(eers.std(ddof=1)) if len(eers) > 1 else 0.0,
        "eer_percent_ci95": [low, high],
        "min_tdcf_mean": float(np.mean(tdcfs)) if tdcfs else None,
        "min_tdcf_std": float(np.std(tdcfs, ddof=1)) if len(tdcfs) > 1 else None,
        "genotype_counts": dict(collections.Counter(row["genotype_text"] for row in rows).most_common()),
        "op_counts": op_counts([row["genotype"] for row in rows]),
    }


def bootstrap_mean_eer_ci(trials: list, rng: np.random.Generator, resamples: int = BOOTSTRAP_RESAMPLES,
                          level: float = 0.95) -> tuple[float, float]:
    """Percentile interval (percent) of the mean over seeds of the pooled EER, resampling seeds and, within
    each class, trials (the same trials for every seed of a resample, since the seeds scored the same set)."""
    labels = trials[0].labels
    if any(not np.array_equal(t.utt_ids, trials[0].utt_ids) for t in trials):
        raise ValueError("the seeds' score files list different trials; score every seed on the same partition")
    bona, spoof = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    means = np.empty(resamples)
    for r in range(resamples):
        seeds = rng.integers(0, len(trials), len(trials))
        b, s = rng.choice(bona, bona.size), rng.choice(spoof, spoof.size)
        means[r] = np.mean([compute_eer(trials[i].scores[b], trials[i].scores[s])[0] for i in seeds])
    tail = (1 - level) / 2
    return float(100 * np.quantile(means, tail)), float(100 * np.quantile(means, 1 - tail))


def op_counts(genotypes: list[dict]) -> dict:
    """{cell: {edge: {op: count}}} over DARTS-style genotypes (lists of [op, input] pairs, two per node):
    an edge is named by its node and input, "node 2 <- 0", so that the same edge compares across seeds."""
    counts: dict = {}
    for genotype in genotypes:
        for cell, edges in genotype.items():
            if not (isinstance(edges, list) and edges and isinstance(edges[0], (list, tuple))):
                continue  # the concat lists
            for position, (op, source) in enumerate(edges):
                edge = f"node {position // 2 + 2} <- {source}"
                cell_counts = counts.setdefault(cell, {}).setdefault(edge, {})
                cell_counts[op] = cell_counts.get(op, 0) + 1
    return counts


def sweep_table(summary: dict) -> str:
    """The sweep as Markdown: a row per seed, the spread, and the genotype frequencies."""
    lines = ["| seed | eval EER % | min t-DCF | genotype |", "|---:|---:|---:|---|"]
    for row in summary["per_seed"]:
        tdcf = "n/a" if row["min_tdcf"] is None else f"{row['min_tdcf']:.4f}"
        lines.append(f"| {row['seed']} | {row['eer_percent']:.2f} | {tdcf} | `{row['genotype_text']}` |")
    low, high = summary["eer_percent_ci95"]
    lines += ["", f"EER {summary['eer_percent_mean']:.2f} ± {summary['eer_percent_std']:.2f} % (mean ± std over "
              f"{len(summary['per_seed'])} seeds); 95 % bootstrap interval of the mean, seeds and trials "
              f"resampled: {low:.2f} to {high:.2f} %.", ""]
    if summary["min_tdcf_mean"] is not None:
        lines += [f"min t-DCF {summary['min_tdcf_mean']:.4f} ± {summary['min_tdcf_std'] or 0.0:.4f}.", ""]
    lines += ["| genotype | seeds |", "|---|---:|"]
    lines += [f"| `{text}` | {count} |" for text, count in summary["genotype_counts"].items()]
    lines += ["", "| cell | edge | ops chosen (seeds) |", "|---|---|---|"]
    for cell, edges in summary["op_counts"].items():
        for edge, ops in sorted(edges.items()):
            chosen = ", ".join(f"{op} {n}" for op, n in sorted(ops.items(), key=lambda item: -item[1]))
            lines.append(f"| {cell} | {edge} | {chosen} |")
    timings = summary.get("timings", {})
    if timings:
        lines += ["", f"Searches ({summary['searches']}): {timings['search_s']:.0f} s; trainings and scoring: "
                  f"{timings['train_and_score_s']:.0f} s."]
    return "\n".join(lines) + "\n"
