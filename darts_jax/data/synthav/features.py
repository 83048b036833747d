"""The audio front end of SynthAV, the cache of the frozen backbones' features, and their in-memory loader.

The fusion search and training read no audio or video: the frozen backbones' taps, pooled to the fusion
length L (the parameter-free part of the reshape layer), are computed once per corpus and cached in
`<corpus>/features/<name>.npz` with a JSON sidecar naming the taps and their channels. `FeatureLoader`
hands them out as `data.loader.Batch`es (the `attacks` field carries the SynthAV category), with a
resumable cursor like `BatchLoader`'s.
"""
from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from darts_jax.data.loader import Batch
from darts_jax.data.synthspoof.spectral import stft

N_FFT = 512  # 32 ms
HOP = 160  # 10 ms
SPECTROGRAM_FRAMES = 100  # one second
SPECTROGRAM_BANDS = 64  # 4 FFT bins each, 0 to 8 kHz
FEATURES_FOLDER = "features"


def log_spectrogram(audio_NxS: np.ndarray) -> np.ndarray:
    """(N, SPECTROGRAM_FRAMES, SPECTROGRAM_BANDS) float32 log power, bins averaged in groups of 4."""
    out = []
    for wave in np.asarray(audio_NxS, np.float64):
        power = np.abs(stft(wave, N_FFT, HOP)[:SPECTROGRAM_FRAMES, :N_FFT // 2]) ** 2
        bands = power.reshape(power.shape[0], SPECTROGRAM_BANDS, -1).mean(axis=-1)
        out.append(np.log(bands + 1e-10))
    return np.stack(out).astype(np.float32)


def features_path(corpus_dir: str | Path, name: str = "backbones") -> Path:
    return Path(corpus_dir) / FEATURES_FOLDER / f"{name}.npz"


def save_features(path: Path, splits: dict, taps: Sequence[str], tap_channels: Sequence[int], info: dict) -> None:
    """`splits[split]` = {"features": (N, L, Σ channels), "labels", "categories", "clip_ids"}."""
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"{split}.{key}": np.asarray(value) for split, parts in splits.items() for key, value in parts.items()}
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    partial.replace(path)
    path.with_suffix(".json").write_text(json.dumps(
        {"taps": list(taps), "tap_channels": [int(c) for c in tap_channels], "splits": sorted(splits), **info},
        indent=1) + "\n")


FEATURE_ARRAYS = ("features", "labels", "categories", "clip_ids")


def load_features(path: str | Path, arrays: tuple[str, ...] = FEATURE_ARRAYS) -> tuple[dict, dict]:
    """(meta, {split: {name: array}}) of a feature cache, for the `arrays` named (all four by default; only
    those named are read, so `()` reads the meta alone)."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not path.is_file() or not sidecar.is_file():
        raise FileNotFoundError(f"{path} (or {sidecar.name}) not found: run `darts-jax pretrain-backbones --data "
                                f"{path.parent.parent}` first, which trains and freezes the backbones and caches "
                                f"their features")
    meta = json.loads(sidecar.read_text())
    splits = {}
    with np.load(path) as cache:
        for split in meta["splits"]:
            splits[split] = {key: cache[f"{split}.{key}"] for key in arrays}
    return meta, splits


def tap_columns(meta: dict, taps: Sequence[str]) -> np.ndarray:
    """Channel indices, in the cache's packed channel axis, of `taps` in the order given."""
    unknown = [t for t in taps if t not in meta["taps"]]
    if unknown:
        raise ValueError(f"taps: {unknown} are not in the feature cache, which has {meta['taps']}")
    offsets = np.concatenate([[0], np.cumsum(meta["tap_channels"])])
    return np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in (meta["taps"].index(t) for t in taps)])


class FeatureLoader:
    """Endless shuffled batches (`iter`) and one ordered pass (`one_pass`) over in-memory features.

    The order of epoch e is a permutation drawn from (seed, e), so the cursor (epoch, batch index) is the
    whole state and a run resumes mid-epoch exactly.
    """

    def __init__(self, features_NxLxC: np.ndarray, labels_N: np.ndarray, categories_N: np.ndarray,
                 clip_ids_N: np.ndarray, batch_size: int, *, seed: int = 0, shuffle: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size: {batch_size} must be at least 1")
        if not len(features_NxLxC) == len(labels_N) == len(categories_N) == len(clip_ids_N):
            raise ValueError("features, labels, categories and clip_ids must have one row per clip")
        self.features = np.asarray(features_NxLxC, np.float32)
        self.labels = np.asarray(labels_N, np.int32)
        self.categories = tuple(str(c) for c in categories_N)
        self.clip_ids = tuple(str(c) for c in clip_ids_N)
        self._batch_size, self._seed, self._shuffle = batch_size, seed, shuffle
        self._crc = zlib.crc32("\n".join(self.clip_ids).encode())
        self._epoch = self._batch_index = 0

    @property
    def steps_per_epoch(self) -> int:
        return len(self.labels) // self._batch_size

    def state(self) -> dict:
        return {"epoch": self._epoch, "batch_index": self._batch_index, "seed": self._seed, "crc": self._crc,
                "batch_size": self._batch_size}

    def restore(self, state: dict) -> None:
        mine = self.state()
        mismatched = [k for k in ("seed", "crc", "batch_size") if state.get(k) != mine[k]]
        if mismatched:
            raise ValueError(f"loader state does not match this loader ({', '.join(mismatched)} differ): the "
                             f"features or the batch size changed since the checkpoint")
        self._epoch, self._batch_index = int(state["epoch"]), int(state["batch_index"])

    def _order(self, epoch: int) -> np.ndarray:
        if not self._shuffle:
            return np.arange(len(self.labels))
        return np.random.default_rng([self._seed, epoch]).permutation(len(self.labels))

    def _batch(self, rows: np.ndarray) -> Batch:
        valid = rows >= 0
        taken = np.where(valid, rows, 0)
        return Batch(self.features[taken], np.where(valid, self.labels[taken], 0).astype(np.int32), valid,
                     tuple(self.clip_ids[r] if v else "" for r, v in zip(taken, valid)),
                     tuple(self.categories[r] if v else "" for r, v in zip(taken, valid)))

    def __iter__(self) -> Iterator[Batch]:
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self.labels)} clips do not fill one batch of {self._batch_size}; "
                             f"lower the batch size")
        while True:
            start = self._batch_index * self._batch_size
            rows = self._order(self._epoch)[start:start + self._batch_size]
            self._batch_index += 1
            if self._batch_index == self.steps_per_epoch:
                self._epoch, self._batch_index = self._epoch + 1, 0
            yield self._batch(rows)

    def one_pass(self) -> Iterator[Batch]:
        """Every clip once in cache order; the last batch padded (valid_B False)."""
        steps = math.ceil(len(self.labels) / self._batch_size)
        padded = np.full(steps * self._batch_size, -1)
        padded[:len(self.labels)] = np.arange(len(self.labels))
        for rows in padded.reshape(steps, self._batch_size):
            yield self._batch(rows)
