"""Predictions on audio files a user has: raw score, LLR and a decision per file, from either model format.

Inputs are files, folders (searched recursively for audio) or list files (one path a line). Audio at
another sample rate is resampled to the model's rate with scipy's polyphase `resample_poly` (Kaiser
window); multi-channel audio is mixed to mono (the channel mean); both are noted on the file's row.

Windows: a file up to the model's length (4 s) is repeat-padded to it, as in training. A longer file
is cut into consecutive windows of that length (a last, partial one is replaced by the window that
ends at the file's end) and the window scores are aggregated by `long_audio`: "mean" (the default),
"max", or "first" (the first window only, the authors' behaviour). The LLR is the calibration applied
to the aggregated raw score.

A file that cannot be read gets a row with its error; the others are still scored.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import soundfile as sf
from tqdm import tqdm

from darts_jax.data.audio import fix_length, load_audio
from darts_jax.spoofing import portable
from darts_jax.spoofing.calibration import Calibration, model_calibration

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au")
LIST_SUFFIXES = (".txt", ".lst", ".list", ".scp")
LONG_AUDIO = ("mean", "max", "first")
PROGRESS_MIN_FILES = 20  # a progress bar (on a terminal) from this many files on
FORMATS = ("table", "csv", "json")


@dataclasses.dataclass(frozen=True)
class Prediction:
    path: str
    score: float | None = None  # raw score (bona fide logit), aggregated over windows
    llr: float | None = None  # None without a calibration
    decision: str | None = None  # "bonafide" / "spoof"; None without a threshold
    windows: int = 0
    seconds: float | None = None
    notes: tuple[str, ...] = ()
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A model of either format: `forward` maps waveforms (batch_size, num_samples) to raw scores."""
    forward: Callable[[np.ndarray], np.ndarray]
    num_samples: int
    sample_rate: int
    calibration: Calibration | None
    batch_size: int


def load_scorer(model_dir, batch_size: int = 16) -> Scorer:
    """A model folder (`darts-jax export`) or a portable StableHLO folder (`export --format stablehlo`)."""
    model_dir = Path(model_dir)
    if portable.is_portable(model_dir):
        forward, manifest = portable.load_stablehlo(model_dir)
        num_samples, sample_rate = manifest["num_samples"], manifest["sample_rate"]
    else:
        from darts_jax.engine import parallel
        from darts_jax.spoofing.export import load_model
        from darts_jax.tasks import evaluate

        space, model, genotype, variables = load_model(model_dir)
        devices = parallel.local_devices(1)
        params, batch_stats = parallel.replicate((variables["params"], variables["batch_stats"]), devices)
        eval_step = evaluate.compile_eval_step(space, model, genotype, devices)

        def forward(wave_BxS):
            out = eval_step(params, batch_stats, None, {"inputs": wave_BxS[None]})
            return np.asarray(jax.device_get(out["score"][0]))

        num_samples, sample_rate = model.num_samples, model.sample_rate
    return Scorer(forward, num_samples, sample_rate, model_calibration(model_dir), batch_size)


def collect_inputs(inputs) -> list[tuple[Path, str | None]]:
    """(path, error or None) for every audio file named, found under a folder, or listed in a list file."""
    found = []
    for entry in map(Path, inputs):
        if entry.is_dir():
            files = sorted(p for p in entry.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            found += [(p, None) for p in files] or [(entry, f"no audio files ({', '.join(AUDIO_SUFFIXES)}) under it")]
        elif entry.is_file() and entry.suffix.lower() in LIST_SUFFIXES:
            lines = entry.read_text(encoding="utf-8").splitlines()
            for line in lines:
                line = line.strip()
                if line and not line.startswith("#"):
                    listed = Path(line) if Path(line).is_absolute() else entry.parent / line
                    found.append((listed, None if listed.is_file() else f"not found (listed in {entry})"))
        else:
            found.append((entry, None if entry.is_file() else "not found"))
    return found


def read_windows(path: Path, num_samples: int, sample_rate: int, long_audio: str):
    """(windows (W, num_samples), seconds, notes) of one file; raises ValueError if it cannot be read."""
    try:
        info = sf.info(path)
    except (sf.SoundFileError, RuntimeError) as err:
        raise ValueError(f"cannot decode the audio ({err})") from None
    notes = []
    if info.channels > 1:
        notes.append(f"{info.channels} channels mixed to mono")
    if info.samplerate != sample_rate:
        notes.append(f"resampled {info.samplerate} -> {sample_rate} Hz")
    wave = load_audio(path, sample_rate, resample=True, downmix=True)
    seconds = wave.size / sample_rate
    window_s = num_samples / sample_rate
    if wave.size < num_samples:
        notes.append(f"{seconds:.2f} s repeated to the model's {window_s:g} s window")
    if wave.size > num_samples and long_audio == "first":
        notes.append(f"only the first {window_s:g} s of {seconds:.2f} s scored (--long-audio first)")
    if wave.size <= num_samples or long_audio == "first":
        return fix_length(wave, num_samples)[None], seconds, notes
    starts = list(range(0, wave.size - num_samples + 1, num_samples))
    if starts[-1] + num_samples < wave.size:
        starts.append(wave.size - num_samples)
    return np.stack([wave[s:s + num_samples] for s in starts]), seconds, notes


def predict(scorer: Scorer, inputs, *, long_audio: str = "mean", threshold: float | None = None,
            on_warning: Callable[[str], None] | None = None) -> list[Prediction]:
    """A Prediction per input file, in input order; windows of several files share batches."""
    if long_audio not in LONG_AUDIO:
        raise ValueError(f"--long-audio: {long_audio!r} is not one of {', '.join(LONG_AUDIO)}")
    entries = collect_inputs(inputs)
    read, window_scores, pending = {}, defaultdict(list), []  # pending: (entry index, window)

    def score_pending(final: bool):
        while len(pending) >= scorer.batch_size or (final and pending):
            chunk = pending[:scorer.batch_size]
            del pending[:scorer.batch_size]
            batch = np.zeros((scorer.batch_size, scorer.num_samples), np.float32)
            batch[:len(chunk)] = [window for _, window in chunk]
            for (index, _), value in zip(chunk, scorer.forward(batch)):
                window_scores[index].append(float(value))

    show_progress = len(entries) >= PROGRESS_MIN_FILES
    for index, (path, error) in enumerate(tqdm(entries, unit="file", disable=None if show_progress else True)):
        if error is None:
            try:
                windows, seconds, notes = read_windows(path, scorer.num_samples, scorer.sample_rate, long_audio)
            except (ValueError, FileNotFoundError, OSError) as err:
                error = str(err).removeprefix(f"{path}: ")
        if error is not None:
            read[index] = Prediction(str(path), error=error)
            continue
        for note in notes:
            if on_warning:
                on_warning(f"{path}: {note}")
        read[index] = Prediction(str(path), windows=len(windows), seconds=seconds, notes=tuple(notes))
        pending += [(index, window) for window in windows]
        score_pending(final=False)
    score_pending(final=True)

    aggregate = np.max if long_audio == "max" else np.mean
    results = []
    for index in range(len(entries)):
        row = read[index]
        if row.error is None:
            score = float(aggregate(window_scores[index]))
            llr = None if scorer.calibration is None else float(scorer.calibration.llr(score))
            decision = None if threshold is None else ("bonafide" if score >= threshold else "spoof")
            row = dataclasses.replace(row, score=score, llr=llr, decision=decision)
        results.append(row)
    return results


def resolve_threshold(calibration: Calibration | None, threshold: float | None,
                      target_far: float | None) -> tuple[float | None, str]:
    """The raw-score threshold of the decisions and a sentence saying where it comes from."""
    if threshold is not None and target_far is not None:
        raise ValueError("give at most one of --threshold and --target-far")
    if threshold is not None:
        return threshold, f"--threshold {threshold:g}"
    if target_far is not None:
        if calibration is None:
            raise ValueError("--target-far needs the dev scores of a calibration: export the model with "
                             "--calibration (see `darts-jax calibrate`), or give --threshold")
        value = calibration.threshold_for_far(target_far)
        return value, f"dev false-acceptance rate <= {target_far:g} (threshold {value:.6g})"
    if calibration is not None:
        return calibration.eer_threshold, (f"dev EER threshold {calibration.eer_threshold:.6g} "
                                           f"(dev EER {calibration.dev_eer_percent:.2f} %)")
    return None, "no decisions: the model has no calibration; give --threshold or export with --calibration"


def _text(value, digits: int = 6) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def format_predictions(predictions: list[Prediction], fmt: str = "table") -> str:
    """`table` (aligned columns), `csv` (with a header) or `json` (one object a line)."""
    if fmt == "json":
        return "\n".join(json.dumps(dataclasses.asdict(p) | {"notes": list(p.notes)}) for p in predictions)
    header = ["path", "score", "llr", "decision", "windows", "seconds", "note"]
    rows = [[p.path, _text(p.score), _text(p.llr), p.decision or "-", str(p.windows), _text(p.seconds, 2),
             f"error: {p.error}" if p.error else "; ".join(p.notes)] for p in predictions]
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerows([header] + rows)
        return buffer.getvalue().rstrip("\n")
    if fmt != "table":
        raise ValueError(f"--format: {fmt!r} is not one of {', '.join(FORMATS)}")
    widths = [max(len(row[k]) for row in [header] + rows) for k in range(len(header) - 1)]
    return "\n".join(("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1]).rstrip()
                     for row in [header] + rows)


def run_predict(model_dir, inputs, *, threshold=None, target_far=None, long_audio="mean", fmt="table",
                batch_size=16) -> int:
    """`darts-jax predict`: predictions on stdout, warnings and failures on stderr; 1 if any file failed."""
    scorer = load_scorer(model_dir, batch_size)
    threshold, source = resolve_threshold(scorer.calibration, threshold, target_far)
    print(f"decision: {source}" if threshold is None else f"decision: bonafide if score >= threshold, {source}",
          file=sys.stderr)
    predictions = predict(scorer, inputs, long_audio=long_audio, threshold=threshold,
                          on_warning=lambda text: print(f"warning: {text}", file=sys.stderr))
    print(format_predictions(predictions, fmt))
    failed = [p for p in predictions if p.error]
    for p in failed:
        print(f"darts-jax predict: could not score {p.path}: {p.error}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} of {len(predictions)} file(s) could not be scored", file=sys.stderr)
    return 1 if failed else 0
