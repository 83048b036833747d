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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: audio file not found; check --data and the protocol")
    try:
        with sf.SoundFile(path) as audio:
            if audio.channels != 1 and not downmix:
                raise ValueError(f"{path}: {audio.channels} channels; expected mono audio (downmix it first)")
            if audio.samplerate != sample_rate and not resample:
                raise ValueError(f"{path}: sampled at {audio.samplerate} Hz, expected {sample_rate} Hz; "
                                 f"resample the corpus or ask for resampling (resample=True)")
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
    if file_rate != sample_rate:
        wave = resample_wave(wave, file_rate, sample_rate)
    return wave


def resample_wave(wave: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (scipy's default Kaiser-windowed anti-aliasing filter)."""
    from scipy.signal import resample_poly

    divisor = math.gcd(from_rate, to_rate)
    return resample_poly(wave, to_rate // divisor, from_rate // divisor).astype(np.float32)


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
