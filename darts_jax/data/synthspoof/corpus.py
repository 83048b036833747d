"""SynthSpoof: a built-in spoofing corpus written in exactly the ASVspoof 2019 LA layout.

`make_corpus` writes FLAC files, CM protocols, simulated ASV scores and a README into a folder that
`load_partition` then reads like the real LA folder. Every utterance draws from its own seed
(seed, partition, index), so the files are byte-identical for a seed whatever the number of processes.
"""
from __future__ import annotations

import functools
import json
import multiprocessing
import os
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np
import soundfile as sf

from darts_jax.data.audio import SAMPLE_RATE
from darts_jax.data.protocols import (EVAL_ATTACKS, LA2019_PROTOCOL_FOLDER, LA2019_PROTOCOLS, NO_ATTACK,
                                      TRAIN_ATTACKS, Utterance, la2019_audio_dir, la2019_line)
from darts_jax.data.synthspoof.attacks import spoof
from darts_jax.data.synthspoof.channel import apply_channel, draw_channel
from darts_jax.data.synthspoof.speech import draw_speaker, plan_utterance, render

FORMAT_VERSION = 5  # bump when generation changes, so an old cached corpus is not reused
MANIFEST = "synthspoof.json"
ASV_SCORE_FOLDER = "ASVspoof2019_LA_asv_scores"
_PARTITION_CODES = {"train": 0, "dev": 1, "eval": 2}
_PREFIXES = {"train": "LA_T", "dev": "LA_D", "eval": "LA_E"}


class PartitionSize(NamedTuple):
    speakers: int
    bona_fide: int
    per_attack: int


SIZES = {
    "tiny": {"train": PartitionSize(6, 20, 6), "dev": PartitionSize(4, 8, 2), "eval": PartitionSize(4, 20, 3)},
    "small": {"train": PartitionSize(20, 300, 250), "dev": PartitionSize(10, 150, 60),
              "eval": PartitionSize(12, 300, 80)},
    # train is the size of the authors' search halves.
    "medium": {"train": PartitionSize(20, 1290, 1900), "dev": PartitionSize(10, 500, 250),
               "eval": PartitionSize(24, 1500, 250)},
}


class _Job(NamedTuple):
    path: str
    seed: int
    partition: str
    index: int
    speaker_number: int
    attack: str


def corpus_utterances(out_dir: str | Path, size: str, seed: int) -> dict[str, list[Utterance]]:
    """The protocol of each partition, its lines in a seeded random order.

    A protocol sorted by class (bona fide first, then attack by attack) would let a line's position
    alone tell the label, to any loader that keeps the file order.
    """
    if size not in SIZES:
        raise ValueError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    partitions, first_speaker = {}, 1
    for partition, shape in SIZES[size].items():
        attacks = TRAIN_ATTACKS if partition != "eval" else EVAL_ATTACKS
        blocks = [(NO_ATTACK, shape.bona_fide)] + [(attack, shape.per_attack) for attack in attacks]
        total = sum(count for _, count in blocks)
        id_rng = np.random.default_rng([seed, 7, _PARTITION_CODES[partition]])
        numbers = id_rng.choice(9_000_000, size=total, replace=False) + 1_000_000
        audio_dir = la2019_audio_dir(out_dir, partition)
        utterances = []
        for attack, count in blocks:
            for position in range(count):
                speaker = first_speaker + position % shape.speakers
                utt_id = f"{_PREFIXES[partition]}_{numbers[len(utterances)]}"
                utterances.append(Utterance(utt_id, f"LA_{speaker:04d}", attack, int(attack == NO_ATTACK),
                                            audio_dir / f"{utt_id}.flac"))
        order = np.random.default_rng([seed, 17, _PARTITION_CODES[partition]]).permutation(len(utterances))
        partitions[partition] = [utterances[i] for i in order]
        first_speaker += shape.speakers
    return partitions


@functools.lru_cache(maxsize=256)
def _speaker(seed: int, speaker_number: int):
    return draw_speaker(np.random.default_rng([seed, 11, speaker_number]))


def synthesize(seed: int, partition: str, index: int, speaker_number: int, attack: str) -> np.ndarray:
    """One utterance as int16 samples: bona fide when `attack` is '-', else spoofed by that attack."""
    channel_rng, plan_rng, render_rng = (np.random.default_rng(s) for s in
                                         np.random.SeedSequence([seed, _PARTITION_CODES[partition], index]).spawn(3))
    speaker = _speaker(seed, speaker_number)
    channel = draw_channel(channel_rng)
    plan = plan_utterance(speaker, channel.speech_samples, plan_rng)
    speech = render(plan, speaker, render_rng) if attack == NO_ATTACK else spoof(attack, plan, speaker, render_rng)
    wave = apply_channel(speech, channel, channel_rng)
    return np.round(np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16)


def _write_job(job: _Job) -> None:
    samples = synthesize(job.seed, job.partition, job.index, job.speaker_number, job.attack)
    sf.write(job.path, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")


def make_corpus(out_dir: str | Path, size: str = "small", seed: int = 0, workers: int | None = None) -> Path:
    """Writes SynthSpoof into `out_dir` (a new or empty folder) and returns it; prints progress.

    A folder already holding the complete corpus of this size and seed is reused as it is; any other
    non-empty folder is refused. `workers` processes generate in parallel (default: the usable cores).
    """
    if size not in SIZES:
        raise ValueError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    if seed < 0:
        raise ValueError(f"seed: {seed} must be >= 0")
    out_dir = Path(out_dir)
    if out_dir.exists():
        if not out_dir.is_dir():
            raise FileExistsError(f"{out_dir}: exists and is not a folder; choose another --out")
        if _is_complete(out_dir, size, seed):
            print(f"SynthSpoof {size} (seed {seed}) is already complete in {out_dir}; reusing it")
            return out_dir
        if any(out_dir.iterdir()):
            raise FileExistsError(f"{out_dir}: not empty and not a complete SynthSpoof {size} corpus with seed "
                                  f"{seed}; choose another --out or delete the folder")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    workers = workers or len(os.sched_getaffinity(0))
    partial = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        partitions = corpus_utterances(partial, size, seed)
        _write_tables(partial, partitions, size, seed)
        _write_audio(partitions, seed, workers, f"SynthSpoof {size} (seed {seed})")
        counts = {partition: len(utts) for partition, utts in partitions.items()}
        # Byte counts of every file, so that a reused corpus is one whose files are all whole.
        file_bytes = {utt.path.name: utt.path.stat().st_size for utts in partitions.values() for utt in utts}
        manifest = {"corpus": "SynthSpoof", "format_version": FORMAT_VERSION, "size": size, "seed": seed,
                    "utterances": counts, "file_bytes": file_bytes}
        (partial / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(partial, out_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return out_dir


def _is_complete(out_dir: Path, size: str, seed: int) -> bool:
    try:
        manifest = json.loads((out_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    expected = {"corpus": "SynthSpoof", "format_version": FORMAT_VERSION, "size": size, "seed": seed}
    if any(manifest.get(key) != value for key, value in expected.items()):
        return False
    file_bytes = manifest.get("file_bytes", {})
    for partition, utterances in corpus_utterances(out_dir, size, seed).items():
        folder = la2019_audio_dir(out_dir, partition)
        present = {entry.name: entry.stat().st_size for entry in os.scandir(folder)} if folder.is_dir() else {}
        if any(present.get(utt.path.name) != file_bytes.get(utt.path.name) for utt in utterances):
            return False
    return True


def _write_tables(root: Path, partitions: dict[str, list[Utterance]], size: str, seed: int) -> None:
    (root / LA2019_PROTOCOL_FOLDER).mkdir()
    (root / ASV_SCORE_FOLDER).mkdir()
    for partition, utterances in partitions.items():
        la2019_audio_dir(root, partition).mkdir(parents=True)
        lines = "".join(la2019_line(utt) + "\n" for utt in utterances)
        (root / LA2019_PROTOCOL_FOLDER / LA2019_PROTOCOLS[partition]).write_text(lines)
        if partition != "train":
            name = f"ASVspoof2019.LA.asv.{partition}.gi.trl.scores.txt"
            (root / ASV_SCORE_FOLDER / name).write_text(_simulated_asv_scores(utterances, seed, partition))
    (root / "README.txt").write_text(_readme(size, seed, {p: len(u) for p, u in partitions.items()}))


def _simulated_asv_scores(utterances: list[Utterance], seed: int, partition: str) -> str:
    """`source key score` lines drawn from Gaussians: a stand-in so min t-DCF code can run (no ASV system)."""
    rng = np.random.default_rng([seed, 13, _PARTITION_CODES[partition]])
    bona_fide = sum(utt.label for utt in utterances)
    lines = [f"bonafide target {score:.6f}" for score in rng.normal(3.0, 1.0, bona_fide)]
    lines += [f"bonafide nontarget {score:.6f}" for score in rng.normal(-2.5, 1.2, 3 * bona_fide)]
    attacks = sorted({utt.attack for utt in utterances if utt.label == 0})
    for attack in attacks:
        count = sum(utt.attack == attack for utt in utterances)
        mean = rng.uniform(0.5, 2.5)
        lines += [f"{attack} spoof {score:.6f}" for score in rng.normal(mean, 1.2, count)]
    return "\n".join(lines) + "\n"


def _readme(size: str, seed: int, counts: dict[str, int]) -> str:
    listing = ", ".join(f"{partition} {count}" for partition, count in counts.items())
    return (
        f"SynthSpoof ({size}, seed {seed}), written by darts-jax make-synthetic.\n\n"
        f"Synthetic speech, not recordings: bona fide utterances come from a source-filter speech model and\n"
        f"spoofs from vocoder-like resyntheses of it (A01-A06 in train/dev, A07-A19 in eval, with A16 = A04\n"
        f"and A19 = A06). The layout is that of ASVspoof 2019 LA, so this folder is a --data folder.\n"
        f"Utterances: {listing}.\n\n"
        f"{ASV_SCORE_FOLDER}/ holds SIMULATED ASV scores: random draws from Gaussians, not the output of any\n"
        f"speaker verification system. They only let min t-DCF code run; t-DCF values computed with them\n"
        f"describe nothing real.\n"
    )


def _write_audio(partitions: dict[str, list[Utterance]], seed: int, workers: int, title: str) -> None:
    """Writes every utterance, in a seeded order of its own: files written in protocol order would
    carry the protocol's order in their modification times (and inode numbers)."""
    jobs = [_Job(str(utt.path), seed, partition, index, int(utt.speaker.split("_")[1]), utt.attack)
            for partition, utterances in partitions.items() for index, utt in enumerate(utterances)]
    jobs = [jobs[i] for i in np.random.default_rng([seed, 19]).permutation(len(jobs))]
    print(f"{title}: writing {len(jobs)} utterances with {workers} process(es)", flush=True)
    start, report_every = time.perf_counter(), max(1, len(jobs) // 10)

    def progress(done: int) -> None:
        if done % report_every == 0 or done == len(jobs):
            print(f"  {done}/{len(jobs)} ({time.perf_counter() - start:.0f} s)", flush=True)

    if workers == 1:
        for done, job in enumerate(jobs, start=1):
            _write_job(job)
            progress(done)
        return
    context = multiprocessing.get_context("spawn")  # fork is unsafe once JAX's threads are running
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for done, _ in enumerate(pool.map(_write_job, jobs, chunksize=8), start=1):
            progress(done)
