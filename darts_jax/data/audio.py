"""Audio decoding and validation (soundfile), and the fixed-length cuts of spec §5.1."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf

# Every corpus darts_jax reads (ASVspoof 2019/2021, In-the-Wild, SynthSpoof) is at 16 kHz.
SAMPLE_RATE = 16000


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, resample: bool = False,
               downmix: bool = False) -> np.ndarray:
    """Mono float32 samples in [-1, 1] of a FLAC/WAV file.

    A file at another rate is an error unless `resample` is set, so a corpus at the wrong rate is never
    converted silently; likewise a multi-channel file unless `downmix` (the mean of the channels).
    Empty, truncated and undecodable files are errors too.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found; check --data and the protocol")
    try:
        with sf.SoundFile(path) as audio:
            if audio.channels != 1 and not downmix:
                raise ValueError(f"{path}: {audio.channels} channels; expected mono audio (downmix it first)")
            if audio.samplerate != sample_rate and not resample:
                raise ValueError(f"{path}: sampled at {audio.samplerate} Hz, expected {sample_rate} Hz; "
                                 f"resample the corpus to {sample_rate} Hz first (e.g. sox IN -r {sample_rate} "
                                 f"OUT); `darts-jax predict` resamples single files itself")
            container = {".flac": "FLAC", ".wav": "WAV"}.get(path.suffix.lower())
            if container is not None and audio.format != container:
                raise ValueError(f"{path}: holds {audio.format} audio under a {path.suffix} name; convert it, "
                                 f"or name it for what it is")
            announced, file_rate = audio.frames, audio.samplerate
            wave = audio.read(dtype="float32")
    except sf.SoundFileError as err:
        raise ValueError(f"{path}: cannot decode the audio ({err}); the file is corrupt or truncated, "
                         f"extract or download it again") from None
    if wave.ndim == 2:
        wave = wave.mean(axis=1, dtype=np.float32)
    if wave.size < announced:
        raise ValueError(f"{path}: decoded {wave.size} of the {announced} samples its header announces; "
                         f"the file is truncated, extract or download it again")
    if wave.size == 0:
        raise ValueError(f"{path}: contains no audio samples")
    check_samples(path, wave)
    if file_rate != sample_rate:
        wave = resample_wave(wave, file_rate, sample_rate)
    return wave


# One 20 ms analysis frame of the front ends: anything shorter holds no speech to score.
MIN_SAMPLES = SAMPLE_RATE // 50


def check_samples(path, wave: np.ndarray) -> None:
    """Refuses samples no detector should be trained or scored on, naming the file."""
    if wave.size < MIN_SAMPLES:
        raise ValueError(f"{path}: only {wave.size} samples ({1000 * wave.size / SAMPLE_RATE:.1f} ms); "
                         f"at least {MIN_SAMPLES} ({1000 * MIN_SAMPLES // SAMPLE_RATE} ms) are needed")
    finite = np.isfinite(wave)
    if not finite.all():
        raise ValueError(f"{path}: {int((~finite).sum())} NaN or infinite samples (first at sample "
                         f"{int(np.argmin(finite))}); the file is damaged, regenerate or re-extract it")
    peak = float(np.abs(wave).max())
    if peak == 0.0:
        raise ValueError(f"{path}: every sample is zero (digital silence); remove it from the protocol")
    if peak > 1.0:
        raise ValueError(f"{path}: samples reach {peak:.3g}, outside [-1, 1] (a float file written unscaled); "
                         f"rescale it")


def resample_wave(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy's default Kaiser-windowed anti-aliasing filter)."""
    from scipy.signal import resample_poly

    divisor = math.gcd(from_rate, to_rate)
    return resample_poly(wave, to_rate // divisor, from_rate // divisor).astype(np.float32)


def speech_bounds(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, threshold_db: float = -35.0,
                  frame_ms: float = 20.0, pad_ms: float = 30.0) -> tuple[int, int]:
    """(start, stop) samples of the span from the first to the last speech frame, padded by `pad_ms`.

    A frame is speech when its RMS is within `threshold_db` of the loudest frame's: an energy detector,
    as the leading/trailing silence studies of ASVspoof use (Müller et al. 2021). A file with no frame
    below the threshold keeps everything.
    """
    frame = max(1, int(sample_rate * frame_ms / 1000))
    count = max(1, wave.size // frame)
    frames = wave[:count * frame].reshape(count, frame).astype(np.float64)
    level_db = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-20)
    speech = np.flatnonzero(level_db >= level_db.max() + threshold_db)
    pad = int(sample_rate * pad_ms / 1000)
    start = max(0, speech[0] * frame - pad)
    stop = wave.size if speech[-1] == count - 1 else min(wave.size, (speech[-1] + 1) * frame + pad)
    return int(start), int(stop)


def trim_silence(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, **detector) -> np.ndarray:
    """`wave` without its leading and trailing non-speech (see `speech_bounds` for the detector)."""
    start, stop = speech_bounds(wave, sample_rate, **detector)
    return wave[start:stop]


def fix_length(wave: np.ndarray, num_samples: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """Exactly `num_samples` samples: repeat the signal until long enough, then keep the first ones.

    With an `rng`, a signal longer than `num_samples` gives a uniformly placed crop instead.
    """
    if wave.ndim != 1 or wave.size == 0:
        raise ValueError(f"fix_length: expected a non-empty 1-D signal, got shape {wave.shape}")
    if rng is not None and wave.size > num_samples:
        start = int(rng.integers(0, wave.size - num_samples + 1))
        return wave[start:start + num_samples].copy()
    # np.resize repeats the input cyclically, which is exactly the authors' repeat padding.
    return np.resize(wave, num_samples)
