"""Corpus readers: ASVspoof 2019 LA (with the search halves), ASVspoof 2021 LA/DF keys, In-the-Wild.

Every reader returns `Utterance` records in file order. Readers first collect every problem of a file
(`scan_*`), so `check-data` can list them all; the `load_*` functions raise on the first one.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

BONA_FIDE_KEY = "bonafide"
SPOOF_KEY = "spoof"
NO_ATTACK = "-"
PARTITIONS = ("train", "dev", "eval", "trn_h", "trn_t")
# ASVspoof 2019 LA attack IDs: train and dev use A01-A06, eval A07-A19, of which two are train systems again.
TRAIN_ATTACKS = tuple(f"A{i:02d}" for i in range(1, 7))
EVAL_ATTACKS = tuple(f"A{i:02d}" for i in range(7, 20))
SAME_AS_TRAIN_ATTACK = {"A16": "A04", "A19": "A06"}
LA2019_PROTOCOLS = {
    "train": "ASVspoof2019.LA.cm.train.trn.txt",
    "dev": "ASVspoof2019.LA.cm.dev.trl.txt",
    "eval": "ASVspoof2019.LA.cm.eval.trl.txt",
    "trn_h": "ASVspoof2019.LA.cm.train.trn_h.txt",
    "trn_t": "ASVspoof2019.LA.cm.train.trn_t.txt",
}
LA2019_PROTOCOL_FOLDER = "ASVspoof2019_LA_cm_protocols"
# The authors keep the protocols directly under LA/ and ship the search halves in split_protocols/.
_PROTOCOL_FOLDERS = (".", LA2019_PROTOCOL_FOLDER, "split_protocols")
_AUDIO_PARTITION = {"train": "train", "dev": "dev", "eval": "eval", "trn_h": "train", "trn_t": "train"}
# A fixed seed, not the run's: the derived halves stand in for the authors' fixed split files.
_SPLIT_SEED = 2021


@dataclasses.dataclass(frozen=True)
class Utterance:
    utt_id: str
    speaker: str
    attack: str  # NO_ATTACK for bona fide
    label: int  # 1 bona fide, 0 spoof
    path: Path


def la2019_audio_dir(data_dir: str | Path, partition: str) -> Path:
    """Folder of a 2019 LA partition's FLAC files; trn_h and trn_t live in the train folder."""
    _check_partition(partition)
    return Path(data_dir) / f"ASVspoof2019_LA_{_AUDIO_PARTITION[partition]}" / "flac"


def la2019_line(utt: Utterance) -> str:
    """One CM protocol line, `SPEAKER_ID UTT_ID - SYSTEM_ID KEY`."""
    key = BONA_FIDE_KEY if utt.label == 1 else SPOOF_KEY
    return f"{utt.speaker} {utt.utt_id} - {utt.attack} {key}"


def find_la2019_protocol(data_dir: str | Path, partition: str) -> Path | None:
    """The partition's protocol directly in `data_dir`, else in the official or split folder; None if absent."""
    _check_partition(partition)
    for folder in _PROTOCOL_FOLDERS:
        path = Path(data_dir) / folder / LA2019_PROTOCOLS[partition]
        if path.is_file():
            return path
    return None


def scan_partition(data_dir: str | Path, partition: str) -> tuple[list[Utterance], list[str]]:
    """(utterances, problems) of a 2019 LA partition; trn_h/trn_t are derived when their files are absent."""
    _check_partition(partition)
    data_dir = Path(data_dir)
    path = find_la2019_protocol(data_dir, partition)
    if path is None and partition in ("trn_h", "trn_t"):
        train, problems = scan_partition(data_dir, "train")
        halves = dict(zip(("trn_h", "trn_t"), split_search_halves(train)))
        return halves[partition], problems
    if path is None:
        return [], [_missing_protocol_message(data_dir, partition)]
    audio_dir = la2019_audio_dir(data_dir, partition)

    def parse(fields: list[str]) -> Utterance:
        if len(fields) != 5:
            raise ValueError(f"expected 5 columns (SPEAKER_ID UTT_ID - SYSTEM_ID KEY), found {len(fields)}")
        speaker, utt_id, _, attack, key = fields
        label = _label_from_key(key)
        if label == 1 and attack != NO_ATTACK:
            raise ValueError(f"bona fide utterance {utt_id} has system {attack!r}; it must be '-'")
        if label == 0 and attack not in allowed:
            raise ValueError(f"spoof utterance {utt_id} has system {attack!r}; the {partition} partition holds "
                             f"{allowed[0]}-{allowed[-1]}" + (" (eval systems belong to eval only)"
                                                              if attack in EVAL_ATTACKS else ""))
        return Utterance(utt_id, speaker, attack, label, audio_dir / f"{utt_id}.flac")

    allowed = EVAL_ATTACKS if partition == "eval" else TRAIN_ATTACKS
    utterances, problems = _parse_rows(path, _split_lines(path), parse)
    return utterances, problems + _class_problems(path, utterances, problems)


def load_partition(data_dir: str | Path, partition: str) -> list[Utterance]:
    """A 2019 LA partition: train, dev, eval, or the search halves trn_h / trn_t."""
    return _raise_problems(*scan_partition(data_dir, partition))


def split_search_halves(train: list[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """Halves the train set like the authors: shuffled within each class and attack, protocol order kept.

    Deterministic for a given train list; with an odd count the first half (trn_h) gets the extra one.
    """
    groups: dict[str, list[int]] = {}
    for index, utt in enumerate(train):
        groups.setdefault(utt.attack, []).append(index)
    first_half = set()
    for attack, indices in groups.items():
        # Seeded by the group's name, so one group's split does not depend on which other groups exist.
        rng = np.random.default_rng([_SPLIT_SEED, *attack.encode()])
        shuffled = rng.permutation(indices)
        first_half.update(shuffled[: (len(indices) + 1) // 2].tolist())
    trn_h = [utt for index, utt in enumerate(train) if index in first_half]
    trn_t = [utt for index, utt in enumerate(train) if index not in first_half]
    return trn_h, trn_t


def find_asvspoof2021_keys(data_dir: str | Path, track: str) -> Path | None:
    """trial_metadata.txt in any of the layouts the full and stage-1 key archives unpack to."""
    candidates = (f"keys/{track}/CM", f"{track}-keys-full/keys/{track}/CM", f"{track}-keys-stage-1/keys/CM",
                  "keys/CM", ".")
    for folder in candidates:
        path = Path(data_dir) / folder / "trial_metadata.txt"
        if path.is_file():
            return path
    return None


def scan_asvspoof2021(data_dir: str | Path, track: str = "LA", key_file: str | Path | None = None,
                      subset: str | None = "eval") -> tuple[list[Utterance], list[str]]:
    """(utterances, problems) of the ASVspoof 2021 LA or DF evaluation keys.

    Key lines are `SPEAKER UTT_ID CODEC SOURCE ATTACK KEY TRIM SUBSET [...]` (DF adds vocoder columns);
    `subset` keeps one phase ("eval", "progress", ...) and None keeps all.
    """
    if track not in ("LA", "DF"):
        raise ValueError(f"track: {track!r} must be LA or DF")
    data_dir = Path(data_dir)
    key_path = Path(key_file) if key_file is not None else find_asvspoof2021_keys(data_dir, track)
    if key_path is None or not key_path.is_file():
        where = key_path if key_path is not None else f"{data_dir}/keys/{track}/CM/"
        return [], [f"{where}: no ASVspoof 2021 {track} trial_metadata.txt; unpack the {track} keys "
                    f"archive into {data_dir} or pass key_file"]
    try:
        audio_index = _asvspoof2021_audio_index(data_dir, track)
    except FileNotFoundError as err:
        return [], [str(err)]

    keyed = set()

    def parse(fields: list[str]) -> Utterance | None:
        if len(fields) < 8:
            raise ValueError(f"expected at least 8 columns (SPEAKER UTT_ID CODEC SOURCE ATTACK KEY TRIM "
                             f"SUBSET), found {len(fields)}")
        speaker, utt_id, attack, key, phase = fields[0], fields[1], fields[4], fields[5], fields[7]
        keyed.add(utt_id)
        label = _label_from_key(key)
        if label == 1:
            attack = NO_ATTACK
        elif attack in (NO_ATTACK, BONA_FIDE_KEY):
            raise ValueError(f"spoof utterance {utt_id} has no attack ID ({attack!r})")
        if subset is not None and phase != subset:
            return None
        return Utterance(utt_id, speaker, attack, label, audio_index(utt_id))

    utterances, problems = _parse_rows(key_path, _split_lines(key_path), parse)
    mismatch = _key_audio_mismatch(key_path, keyed, audio_index.stems, "flac")
    if mismatch:
        problems.append(mismatch)
    if not utterances and not problems and subset is not None:
        problems.append(f"{key_path}: no trial of subset {subset!r}; pass subset=None to keep every trial")
    return utterances, problems


def load_asvspoof2021(data_dir: str | Path, track: str = "LA", key_file: str | Path | None = None,
                      subset: str | None = "eval") -> list[Utterance]:
    """ASVspoof 2021 LA or DF evaluation trials with their keys; `data_dir` holds ASVspoof2021_{track}_eval/."""
    return _raise_problems(*scan_asvspoof2021(data_dir, track, key_file, subset))


def scan_in_the_wild(data_dir: str | Path) -> tuple[list[Utterance], list[str]]:
    """(utterances, problems) of In-the-Wild's `meta.csv` (`file,speaker,label`, label bona-fide or spoof)."""
    data_dir = Path(data_dir)
    path = data_dir / "meta.csv"
    if not path.is_file():
        return [], [f"{path}: not found; --data must name the release_in_the_wild folder holding meta.csv"]
    rows = list(_csv_rows(path))
    if not rows:
        return [], [f"{path}: empty file; expected the header file,speaker,label"]
    header_line, header = rows[0]
    columns = {name.strip(): position for position, name in enumerate(header)}
    missing = [name for name in ("file", "speaker", "label") if name not in columns]
    if missing:
        return [], [f"{path}:{header_line}: header lacks column(s) {missing}; expected file,speaker,label"]

    def parse(fields: list[str]) -> Utterance:
        if len(fields) != len(header):
            raise ValueError(f"expected {len(header)} comma-separated fields, found {len(fields)}")
        name, speaker, key = (fields[columns[c]].strip() for c in ("file", "speaker", "label"))
        if key not in ("bona-fide", "spoof"):
            raise ValueError(f"unknown label {key!r}: expected bona-fide or spoof")
        label = int(key == "bona-fide")
        # In-the-Wild names no spoofing systems.
        attack = NO_ATTACK if label == 1 else "unknown"
        return Utterance(Path(name).stem, speaker, attack, label, data_dir / name)

    utterances, problems = _parse_rows(path, rows[1:], parse)
    listed = {Path(fields[columns["file"]].strip()).stem for _, fields in rows[1:] if len(fields) == len(header)}
    mismatch = _key_audio_mismatch(path, listed, {p.stem for p in data_dir.glob("*.wav")}, "wav")
    return utterances, problems + ([mismatch] if mismatch else [])


def load_in_the_wild(data_dir: str | Path) -> list[Utterance]:
    """The In-the-Wild corpus; `data_dir` holds meta.csv and the WAV files."""
    return _raise_problems(*scan_in_the_wild(data_dir))


def _check_partition(partition: str) -> None:
    if partition not in PARTITIONS:
        raise ValueError(f"partition: {partition!r} is not one of {', '.join(PARTITIONS)}")


def _missing_protocol_message(data_dir: Path, partition: str) -> str:
    message = (f"{data_dir}: no {LA2019_PROTOCOLS[partition]} directly in it or in {LA2019_PROTOCOL_FOLDER}/; "
               f"--data must name the LA folder that holds ASVspoof2019_LA_train/")
    if (data_dir / "LA").is_dir():
        message += f" (did you mean {data_dir / 'LA'}?)"
    return message


def _label_from_key(key: str) -> int:
    if key == BONA_FIDE_KEY:
        return 1
    if key == SPOOF_KEY:
        return 0
    raise ValueError(f"unknown label {key!r}: expected {BONA_FIDE_KEY} or {SPOOF_KEY}")


def _split_lines(path: Path) -> Iterable[tuple[int, list[str]]]:
    with open(path, encoding="utf-8") as lines:
        for line_number, line in enumerate(lines, start=1):
            fields = line.split()
            if fields:
                yield line_number, fields


def _csv_rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        for fields in reader:
            if fields:
                yield reader.line_num, fields


def _parse_rows(path: Path, rows: Iterable[tuple[int, list[str]]],
                parse: Callable[[list[str]], Utterance | None]) -> tuple[list[Utterance], list[str]]:
    utterances, problems, first_seen = [], [], {}
    try:
        for line_number, fields in rows:
            try:
                utt = parse(fields)
            except ValueError as err:
                problems.append(f"{path}:{line_number}: {err}")
                continue
            if utt is None:
                continue
            if utt.utt_id in first_seen:
                problems.append(f"{path}:{line_number}: duplicate utterance ID {utt.utt_id} "
                                f"(first listed on line {first_seen[utt.utt_id]})")
                continue
            first_seen[utt.utt_id] = line_number
            utterances.append(utt)
    except (OSError, UnicodeDecodeError) as err:
        problems.append(f"{path}: cannot read the protocol ({err})")
    return utterances, problems


def _class_problems(path: Path, utterances: list[Utterance], problems: list[str]) -> list[str]:
    """A protocol needs trials of both classes: no EER, no training without them (checked once its lines
    parse, so that a broken line is not also reported as a missing class)."""
    if problems:
        return []
    if not utterances:
        return [f"{path}: no trials; the protocol is empty"]
    missing = [name for label, name in ((1, "bona fide"), (0, "spoof"))
               if not any(u.label == label for u in utterances)]
    if missing:
        return [f"{path}: no {missing[0]} trials among its {len(utterances)}; a partition needs both classes"]
    return []


def _raise_problems(utterances: list[Utterance], problems: list[str]) -> list[Utterance]:
    if problems:
        more = f" (and {len(problems) - 1} more problem(s); `darts-jax check-data` lists them all)" \
            if len(problems) > 1 else ""
        raise ValueError(problems[0] + more)
    return utterances


class _AudioIndex:
    """Maps an utterance ID to its FLAC; DF ships in parts, each with its own ASVspoof2021_DF_eval/flac."""

    def __init__(self, folders: list[Path], suffix: str = ".flac"):
        self.folders, self.suffix, self.located = folders, suffix, {}
        for folder in folders:
            with os.scandir(folder) as entries:
                self.located.update((name[:-len(suffix)], folder) for name in (e.name for e in entries)
                                    if name.endswith(suffix))
        self.stems = set(self.located)

    def __call__(self, utt_id: str) -> Path:
        return self.located.get(utt_id, self.folders[0]) / f"{utt_id}{self.suffix}"


def _asvspoof2021_audio_index(data_dir: Path, track: str) -> _AudioIndex:
    name = f"ASVspoof2021_{track}_eval"
    folders = [data_dir / name / "flac"] + sorted(data_dir.glob(f"{name}_part*/{name}/flac"))
    folders = [folder for folder in folders if folder.is_dir()]
    if not folders:
        raise FileNotFoundError(f"{data_dir}: no {name}/flac folder; --data must name the folder that holds "
                                f"{name}/ (or its {name}_partNN/ parts)")
    return _AudioIndex(folders)


def _key_audio_mismatch(key_path: Path, keyed: set[str], audio: set[str], kind: str, shown: int = 5) -> str | None:
    """The problem of a key whose utterances and the audio files differ, with counts and the first ids."""
    missing, extra = sorted(keyed - audio), sorted(audio - keyed)
    if not missing and not extra:
        return None
    parts = []
    if missing:
        parts.append(f"{len(missing)} of its {len(keyed)} utterance(s) have no {kind} file "
                     f"(first: {', '.join(missing[:shown])})")
    if extra:
        parts.append(f"{len(extra)} {kind} file(s) are not in it (first: {', '.join(extra[:shown])})")
    return (f"{key_path}: the key does not match the audio: " + "; ".join(parts)
            + ". Use the key of this release, or the audio it was made for")
