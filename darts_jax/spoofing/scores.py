"""ASVspoof score files: CM `utt_id attack_id key score` (to and from `Scores`) and ASV `source key score`.

CM score files are written whole and atomically, never appended to: the authors' evaluate script
appended, so a re-run silently duplicated every trial.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from darts_jax.tasks.evaluate import Scores

CM_KEYS = ("bonafide", "spoof")
ASV_KEYS = ("target", "nontarget", "spoof")
_CM_LAYOUT = "utt_id attack_id key score"
_ASV_LAYOUT = "source key score"


@dataclasses.dataclass(frozen=True)
class AsvScores:
    """ASV trials as parallel arrays; source is `bonafide` or the attack id."""

    sources: np.ndarray
    keys: np.ndarray
    scores: np.ndarray


def utterance_scores(utterances, values) -> Scores:
    """`Scores` of one value per utterance (protocol order): their ids, attacks and labels beside `values`."""
    return Scores(np.array([u.utt_id for u in utterances]), np.array([u.attack for u in utterances]),
                  np.array([u.label for u in utterances]), np.asarray(values))


def write_cm_scores(path, utt_ids, attacks, keys, scores, overwrite: bool = False) -> None:
    """Write a CM score file in one go (temp file + rename); refuse to replace a file unless `overwrite`."""
    path = Path(path)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1:
        raise ValueError(f"cannot write {path}: scores must be 1-D, got shape {scores.shape}")
    columns = [list(map(str, utt_ids)), list(map(str, attacks)), list(map(str, keys)), scores.tolist()]
    if len({len(column) for column in columns}) != 1:
        raise ValueError(f"cannot write {path}: utt_ids, attacks, keys and scores have lengths "
                         f"{[len(column) for column in columns]}; they must be equal")
    for name, column in zip(("utt_id", "attack_id"), columns[:2]):
        for value in column:
            if not value or len(value.split()) != 1:
                raise ValueError(f"cannot write {path}: {name} {value!r} must be one non-empty token without spaces")
    for utt_id, key, score in zip(columns[0], columns[2], columns[3]):
        if key not in CM_KEYS:
            raise ValueError(f"cannot write {path}: trial {utt_id} has key {key!r}, expected one of {CM_KEYS}")
        if not math.isfinite(score):
            raise ValueError(f"cannot write {path}: trial {utt_id} has a non-finite score {score}")
    if len(set(columns[0])) != len(columns[0]):
        raise ValueError(f"cannot write {path}: utt_ids contain duplicates")
    # repr() gives the shortest text that reads back as the same float, so the round trip is exact.
    text = "".join(f"{utt_id} {attack} {key} {score!r}\n" for utt_id, attack, key, score in zip(*columns))
    _write_atomically(path, text, overwrite)


def check_writable(path, overwrite: bool = False) -> None:
    """Refuses a score-file path that would fail or replace a file, before any work is done for it."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; give a file name for the scores")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot write {path}: folder {path.parent} does not exist; create it first")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} already exists; choose another path or pass overwrite=True to replace it")


def _write_atomically(path: Path, text: str, overwrite: bool) -> None:
    check_writable(path, overwrite)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp makes the file private (0600); a score file is meant to be shared like any output.
        os.fchmod(handle, 0o644)
        with os.fdopen(handle, "w", encoding="utf-8") as tmp:
            tmp.write(text)
            tmp.flush()
            os.fsync(tmp.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        os.unlink(tmp_name)
        raise


def _read_rows(path, layout: str, allowed_keys: tuple[str, ...], what: str) -> tuple[list[int], list[list]]:
    """Line numbers and columns of a whitespace-separated score file whose last two columns are key and score.

    The score column comes back as a float. Blank lines are skipped. Every malformed line raises a
    ValueError naming the file and line.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} score file {path} is a folder; give the score file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{what} score file {path} does not exist")
    n_columns = len(layout.split())
    line_numbers, rows = [], []
    raw_lines = path.read_bytes().splitlines()
    for line_number, raw in enumerate(raw_lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}, line {line_number}: not UTF-8 text (byte {raw[err.start]:#04x} at column "
                             f"{err.start + 1}); ids and keys are ASCII, re-save the file as UTF-8") from None
        fields = line.split()
        if not fields:
            continue
        where = f"{path}, line {line_number}"
        if len(fields) != n_columns:
            raise ValueError(f"{where}: expected {n_columns} columns `{layout}`, "
                             f"found {len(fields)}: {line.strip()!r}")
        key, score_text = fields[-2], fields[-1]
        if key not in allowed_keys:
            raise ValueError(f"{where}: key {key!r} must be one of {', '.join(allowed_keys)}")
        try:
            score = float(score_text)
        except ValueError:
            raise ValueError(f"{where}: score {score_text!r} is not a number") from None
        if not math.isfinite(score):
            raise ValueError(f"{where}: score {score_text!r} is not finite")
        line_numbers.append(line_number)
        rows.append(fields[:-1] + [score])
    for key in allowed_keys:
        if not any(fields[-2] == key for fields in rows):
            raise ValueError(f"{path} has no {key!r} trials; a {what} score file needs all of "
                             f"{', '.join(allowed_keys)}")
    return line_numbers, rows


def cm_keys(labels) -> list[str]:
    """The key column of a CM score file for labels (1 bona fide, 0 spoof)."""
    return [CM_KEYS[0] if label == 1 else CM_KEYS[1] for label in np.asarray(labels).tolist()]


def cm_trials(utt_ids, attacks, keys, scores) -> Scores:
    """`Scores` of CM trials given by their key column (`bonafide` / `spoof`)."""
    bad = [key for key in keys if key not in CM_KEYS]
    if bad:
        raise ValueError(f"keys: {bad[0]!r} is not one of {CM_KEYS}")
    labels = (np.asarray(keys) == CM_KEYS[0]).astype(np.int32)
    return Scores(np.asarray(utt_ids), np.asarray(attacks), labels, np.asarray(scores, dtype=np.float64))


def write_scores(path, trials: Scores, overwrite: bool = False) -> None:
    """`write_cm_scores` of a `Scores` record."""
    write_cm_scores(path, trials.utt_ids, trials.attacks, cm_keys(trials.labels), trials.scores, overwrite)


def read_cm_scores(path) -> Scores:
    """Read and validate a CM score file `utt_id attack_id key score`."""
    line_numbers, rows = _read_rows(path, _CM_LAYOUT, CM_KEYS, "CM")
    first_line = {}
    for line_number, fields in zip(line_numbers, rows):
        earlier = first_line.setdefault(fields[0], line_number)
        if earlier != line_number:
            raise ValueError(f"{path}, line {line_number}: utt_id {fields[0]} already appears on line {earlier} "
                             f"(was the file appended to twice?)")
    utt_ids, attacks, keys, scores = zip(*rows)
    return cm_trials(utt_ids, attacks, keys, scores)


def read_asv_scores(path) -> AsvScores:
    """Read and validate an ASV score file `source key score` (key target, nontarget or spoof)."""
    _, rows = _read_rows(path, _ASV_LAYOUT, ASV_KEYS, "ASV")
    sources, keys, scores = zip(*rows)
    return AsvScores(np.array(sources), np.array(keys), np.array(scores, dtype=np.float64))
