"""Batches of in-memory arrays, for the tasks whose data fit in memory (adaptation, pseudo-depth).

`ArrayLoader` gives endless shuffled training batches resumable by a cursor: epoch e visits the rows in
the order of a generator seeded with (seed, e), so the batches depend on the seed and the number of
batches drawn only, and `restore(state())` gives what an uninterrupted run draws. `fixed_batches` walks
the rows in order for scoring, padding the last batch so that shapes, and compiled steps, never change.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np


class ArrayLoader:
    """Endless shuffled batches (`iter`, the last partial batch of an epoch dropped) of equal-length arrays."""

    def __init__(self, arrays: dict[str, np.ndarray], batch_size: int, seed: int):
        sizes = {name: len(value) for name, value in arrays.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays of different lengths: {sizes}")
        self.arrays = {name: np.asarray(value) for name, value in arrays.items()}
        self.batch_size, self.seed = batch_size, seed
        self.size = next(iter(sizes.values()))
        if not 1 <= batch_size <= self.size:
            raise ValueError(f"batch_size (--batch-size): {batch_size} must be between 1 and the {self.size} rows "
                             f"of the training data")
        self.cursor = 0

    @property
    def steps_per_epoch(self) -> int:
        return self.size // self.batch_size

    def state(self) -> dict:
        return {"cursor": self.cursor, "seed": self.seed}

    def restore(self, state: dict) -> None:
        if "cursor" not in state and {"epoch", "batch"} <= set(state):
            # The adaptation task's loader of the previous release kept (epoch, batch) with the same order.
            state = {"cursor": int(state["epoch"]) * self.steps_per_epoch + int(state["batch"]), "seed": self.seed}
        if state.get("seed") != self.seed:
            raise ValueError(f"loader state of seed {state.get('seed')} given to a loader of seed {self.seed}")
        self.cursor = int(state["cursor"])

    def __iter__(self) -> Iterator[dict]:
        while True:
            epoch, index = divmod(self.cursor, self.steps_per_epoch)
            order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
            rows = order[index * self.batch_size:(index + 1) * self.batch_size]
            self.cursor += 1
            yield {name: value[rows] for name, value in self.arrays.items()}


def fixed_batches(arrays: dict[str, np.ndarray], batch_size: int) -> Iterator[tuple[dict, int]]:
    """(batch padded to `batch_size` by repeating row 0, number of real rows) over the rows in order."""
    size = len(next(iter(arrays.values())))
    for start in range(0, size, batch_size):
        rows = np.arange(start, min(start + batch_size, size))
        padded = np.concatenate([rows, np.zeros(batch_size - len(rows), int)])
        yield {name: value[padded] for name, value in arrays.items()}, len(rows)
