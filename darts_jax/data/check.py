"""Whole-corpus validation before a long run: every protocol line and every audio file, all problems at once."""
from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from darts_jax.data.audio import SAMPLE_RATE, load_audio
from darts_jax.data.protocols import (Utterance, find_la2019_protocol, scan_asvspoof2021, scan_in_the_wild,
                                      scan_partition)


def check_corpus(data_dir: str | Path, sample_rate: int = SAMPLE_RATE, num_workers: int = 8) -> list[str]:
    """Every problem found in a corpus folder, one message each; an empty list means it is usable.

    The folder may be an ASVspoof 2019 LA folder (train, dev and eval, and the search halves when
    their files are present), a folder with ASVspoof2021_LA_eval/ or ASVspoof2021_DF_eval/ and its
    keys, or In-the-Wild's folder with meta.csv. Each audio file is decoded in full, so truncated files
    are found; progress goes to stderr.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        return [f"{data_dir}: not a folder; --data must name the corpus folder"]
    utterances, problems = _scan_protocols(data_dir)
    problems += check_audio(utterances, sample_rate, num_workers)
    return problems


def _scan_protocols(data_dir: Path) -> tuple[list[Utterance], list[str]]:
    if (data_dir / "meta.csv").is_file():
        return scan_in_the_wild(data_dir)
    tracks = [track for track in ("LA", "DF") if any(data_dir.glob(f"ASVspoof2021_{track}_eval*"))]
    if tracks:
        utterances, problems = [], []
        for track in tracks:
            found, issues = scan_asvspoof2021(data_dir, track, subset=None)
            utterances += found
            problems += issues
        return utterances, problems
    return _scan_la2019(data_dir)


def _scan_la2019(data_dir: Path) -> tuple[list[Utterance], list[str]]:
    utterances, problems, by_partition = [], [], {}
    for partition in ("train", "dev", "eval"):
        found, issues = scan_partition(data_dir, partition)
        by_partition[partition] = found
        utterances += found
        problems += issues
    train_ids = {utt.utt_id for utt in by_partition["train"]}
    halves = {}
    for half in ("trn_h", "trn_t"):
        path = find_la2019_protocol(data_dir, half)
        if path is None:
            continue
        found, issues = scan_partition(data_dir, half)
        problems += issues
        halves[half] = {utt.utt_id for utt in found}
        outside = [utt.utt_id for utt in found if utt.utt_id not in train_ids]
        if outside and train_ids:
            problems.append(f"{path}: {len(outside)} utterance(s) not in the train protocol, e.g. {outside[0]}")
    if len(halves) == 2:
        shared = sorted(halves["trn_h"] & halves["trn_t"])
        if shared:
            problems.append(f"{data_dir}: {len(shared)} utterance(s) in both trn_h and trn_t, e.g. {shared[0]}; "
                            f"the search halves must be disjoint")
    return utterances, problems


def check_audio(utterances: list[Utterance], sample_rate: int = SAMPLE_RATE, num_workers: int = 8) -> list[str]:
    """One message per unusable audio file (missing, undecodable, truncated, wrong rate, multichannel, empty)."""
    paths = list(dict.fromkeys(utt.path for utt in utterances))

    def problem(path: Path) -> str | None:
        try:
            load_audio(path, sample_rate)
        except (ValueError, FileNotFoundError) as err:
            return str(err)
        return None

    found, report_every = [], max(1000, len(paths) // 10)
    with ThreadPoolExecutor(num_workers) as pool:
        for done, message in enumerate(pool.map(problem, paths), start=1):
            if message is not None:
                found.append(message)
            if done % report_every == 0:
                print(f"checked {done}/{len(paths)} audio files", file=sys.stderr, flush=True)
    return found
