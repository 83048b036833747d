"""Batches of fixed-length waveforms: a thread pool with bounded prefetch and a resumable cursor.

The order of epoch e is a permutation drawn from (seed, e), so the loader state is just a cursor
(epoch, batch index) and a run resumes mid-epoch exactly without storing any permutation.
Random crops draw from (seed, epoch, utterance), so they too are independent of thread timing.
"""
from __future__ import annotations

import collections
import contextlib
import itertools
import math
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

import numpy as np

from darts_jax.data.audio import SAMPLE_RATE, fix_length, load_audio, trim_silence
from darts_jax.data.protocols import Utterance, load_partition


class Batch(NamedTuple):
    wave_BxS: np.ndarray  # float32
    label_B: np.ndarray  # int32, 1 bona fide, 0 spoof (0 on padding rows)
    valid_B: np.ndarray  # bool, False on the padding rows of a last evaluation batch
    utt_ids: tuple[str, ...]  # "" on padding rows
    attacks: tuple[str, ...]


class _Request(NamedTuple):
    indices: np.ndarray  # utterance indices, -1 for padding rows
    epoch: int | None  # None: no random crop


class BatchLoader:
    """Endless training batches (`iter`) and single evaluation passes (`one_pass`) over one shard.

    Each host passes its own `shard_index` out of `shard_count`; shards are disjoint and every shard
    runs the same number of steps. Use one live iterator per loader: a new `iter()` or a `restore()`
    supersedes the previous iterator, which then raises if advanced.
    """

    def __init__(self, utterances: Sequence[Utterance], batch_size: int, *, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True, num_samples: int = 64000, random_crop: bool = False,
                 shard_index: int = 0, shard_count: int = 1, num_workers: int = 4, prefetch: int = 4,
                 sample_rate: int = SAMPLE_RATE, resample: bool = False, trim_silence: bool = False):
        for name, value, least in (("batch_size", batch_size, 1), ("num_samples", num_samples, 1),
                                   ("shard_count", shard_count, 1), ("num_workers", num_workers, 1),
                                   ("prefetch", prefetch, 1), ("seed", seed, 0)):
            if value < least:
                raise ValueError(f"{name}: {value} must be at least {least}")
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard_index: {shard_index} must be in [0, {shard_count})")
        if not utterances:
            raise ValueError("utterances: the list is empty; check the protocol")
        self._utterances = tuple(utterances)
        # A saved cursor only makes sense for the same list: compare a checksum of its IDs.
        self._utterances_crc = zlib.crc32("\n".join(u.utt_id for u in self._utterances).encode())
        self._batch_size = batch_size
        self._seed = seed
        self._shuffle = shuffle
        self._drop_last = drop_last
        self._num_samples = num_samples
        self._random_crop = random_crop
        self._shard_index = shard_index
        self._shard_count = shard_count
        self._num_workers = num_workers
        self._prefetch = prefetch
        self._sample_rate = sample_rate
        self._resample = resample
        self._trim_silence = trim_silence  # leading/trailing non-speech removed before the fixed-length cut
        self._epoch = 0
        self._batch_index = 0
        self._generation = 0

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch, the same on every shard."""
        per_shard = len(self._utterances) // self._shard_count
        if self._drop_last:
            return per_shard // self._batch_size
        return math.ceil(per_shard / self._batch_size)

    @property
    def eval_steps(self) -> int:
        """Batches of `one_pass`, the same on every shard."""
        return math.ceil(math.ceil(len(self._utterances) / self._shard_count) / self._batch_size)

    def state(self) -> dict:
        """JSON-serialisable cursor of the next batch `iter` hands out (prefetched batches excluded)."""
        return {"epoch": self._epoch, "batch_index": self._batch_index, **self._identity()}

    def restore(self, state: dict) -> None:
        """Moves the cursor to a saved `state()`; the loader must have the same data, batch and shard."""
        expected = self._identity()
        mismatched = [f"{key}: saved {state.get(key)!r}, this loader has {value!r}"
                      for key, value in expected.items() if state.get(key) != value]
        if mismatched:
            raise ValueError("loader state does not match this loader (" + "; ".join(mismatched) + ")")
        epoch, batch_index = state.get("epoch"), state.get("batch_index")
        if not (isinstance(epoch, int) and epoch >= 0 and isinstance(batch_index, int)
                and 0 <= batch_index < max(self.steps_per_epoch, 1)):
            raise ValueError(f"loader state: epoch {epoch!r} / batch_index {batch_index!r} out of range "
                             f"({self.steps_per_epoch} steps per epoch)")
        self._epoch, self._batch_index = epoch, batch_index
        self._generation += 1

    def __iter__(self) -> Iterator[Batch]:
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(self._utterances)} utterances over {self._shard_count} shard(s) do not fill "
                             f"one batch of {self._batch_size}; lower the batch size")
        self._generation += 1
        return self._training_batches(self._generation)

    def one_pass(self) -> Iterator[Batch]:
        """Every utterance of this shard once, in protocol order, first `num_samples` of each.

        The last batch is padded (valid_B False), and shards with fewer utterances get one more
        padding row, so every host runs `eval_steps` batches.
        """
        shard = np.arange(len(self._utterances))[self._shard_index::self._shard_count]
        padded = np.full(self.eval_steps * self._batch_size, -1)
        padded[:shard.size] = shard
        requests = (_Request(rows, None) for rows in padded.reshape(self.eval_steps, self._batch_size))
        with contextlib.closing(self._stream(requests)) as stream:
            for batch in stream:
                yield batch

    def _identity(self) -> dict:
        return {"seed": self._seed, "shuffle": self._shuffle, "num_utterances": len(self._utterances),
                "utterances_crc32": self._utterances_crc, "batch_size": self._batch_size,
                "shard_index": self._shard_index, "shard_count": self._shard_count}

    def epoch_order(self, epoch: int) -> np.ndarray:
        """This shard's utterance indices for a training epoch, before batching.

        Shard k takes block k of each global batch (shard_count x batch_size consecutive entries of the
        epoch's permutation), so the global batch of a step, and which device holds which rows, are the
        same whatever the number of hosts the devices are spread over.
        """
        count = len(self._utterances)
        order = (np.random.default_rng([self._seed, epoch]).permutation(count) if self._shuffle
                 else np.arange(count))
        if not self._drop_last:
            return order[self._shard_index::self._shard_count][: count // self._shard_count]
        global_batch = self._batch_size * self._shard_count
        steps = count // global_batch
        blocks = order[:steps * global_batch].reshape(steps, self._shard_count, self._batch_size)
        return blocks[:, self._shard_index].reshape(-1)

    def _training_requests(self, epoch: int, batch_index: int) -> Iterator[_Request]:
        steps, size = self.steps_per_epoch, self._batch_size
        for epoch in itertools.count(epoch):
            order = self.epoch_order(epoch)
            for step in range(batch_index, steps):
                rows = np.full(size, -1)
                chosen = order[step * size:(step + 1) * size]
                rows[:chosen.size] = chosen
                yield _Request(rows, epoch if self._random_crop else None)
            batch_index = 0

    def _training_batches(self, generation: int) -> Iterator[Batch]:
        requests = self._training_requests(self._epoch, self._batch_index)
        with contextlib.closing(self._stream(requests)) as stream:
            for batch in stream:
                if generation != self._generation:
                    raise RuntimeError("this loader iterator was superseded by a newer iter() or restore()")
                self._batch_index += 1
                if self._batch_index == self.steps_per_epoch:
                    self._epoch, self._batch_index = self._epoch + 1, 0
                yield batch

    def _stream(self, requests: Iterator[_Request]) -> Iterator[Batch]:
        """Loads requests in order, keeping up to `prefetch` batches in flight on the thread pool."""
        stop = threading.Event()
        pool = ThreadPoolExecutor(self._num_workers, thread_name_prefix="darts-jax-loader")
        in_flight: collections.deque = collections.deque()
        try:
            for request in itertools.islice(requests, self._prefetch):
                in_flight.append(self._submit(pool, request, stop))
            while in_flight:
                request, wave_BxS, futures = in_flight.popleft()
                following = next(requests, None)
                if following is not None:
                    in_flight.append(self._submit(pool, following, stop))
                for future in futures:
                    future.result()
                yield self._assemble(request, wave_BxS)
        finally:
            # Unblocks and joins the workers, also when the consumer abandons the iterator.
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit(self, pool: ThreadPoolExecutor, request: _Request, stop: threading.Event):
        wave_BxS = np.zeros((request.indices.size, self._num_samples), np.float32)
        futures: list[Future] = [pool.submit(self._fill_row, wave_BxS, row, int(index), request.epoch, stop)
                                 for row, index in enumerate(request.indices) if index >= 0]
        return request, wave_BxS, futures

    def _fill_row(self, wave_BxS: np.ndarray, row: int, index: int, epoch: int | None,
                  stop: threading.Event) -> None:
        if stop.is_set():
            return
        wave = load_audio(self._utterances[index].path, self._sample_rate, self._resample)
        rng = None if epoch is None else np.random.default_rng([self._seed, epoch, index])
        if self._trim_silence:
            wave = trim_silence(wave, self._sample_rate)
        wave_BxS[row] = fix_length(wave, self._num_samples, rng)

    def _assemble(self, request: _Request, wave_BxS: np.ndarray) -> Batch:
        chosen = [self._utterances[i] if i >= 0 else None for i in request.indices]
        return Batch(
            wave_BxS=wave_BxS,
            label_B=np.array([u.label if u else 0 for u in chosen], np.int32),
            valid_B=request.indices >= 0,
            utt_ids=tuple(u.utt_id if u else "" for u in chosen),
            attacks=tuple(u.attack if u else "" for u in chosen),
        )


def search_loaders(data_dir: str | Path, batch_size: int, *, seed: int, **loader_options
                   ) -> tuple[BatchLoader, BatchLoader]:
    """Independent training loaders over the search halves: trn_h for the weights, trn_t for α/β."""
    weight_seed, arch_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2))
    return (BatchLoader(load_partition(data_dir, "trn_h"), batch_size, seed=weight_seed, **loader_options),
            BatchLoader(load_partition(data_dir, "trn_t"), batch_size, seed=arch_seed, **loader_options))


def measure_throughput(data_dir: str | Path, partition: str = "train", batch_size: int = 64,
                       num_batches: int = 50, num_workers: int = 4, random_crop: bool = True) -> dict:
    """Utterances per second read, cut to 4 s and batched from a 2019 LA partition (thread start included).

    `cpu_seconds` is this process's CPU time over the same span: on a busy machine, batch_size *
    num_batches / cpu_seconds tells what one idle core would deliver.
    """
    utterances = load_partition(data_dir, partition)
    loader = BatchLoader(utterances, batch_size, num_workers=num_workers, random_crop=random_crop)
    start, cpu_start = time.perf_counter(), time.process_time()
    batches = iter(loader)
    for _ in range(num_batches):
        next(batches)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    batches.close()
    return {"partition": partition, "batch_size": batch_size, "num_batches": num_batches,
            "num_workers": num_workers, "seconds": seconds, "cpu_seconds": cpu_seconds,
            "utterances_per_second": num_batches * batch_size / seconds,
            "batches_per_second": num_batches / seconds}
