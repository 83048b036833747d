"""The search and training loops on random in-memory data, on the two test devices.

Search: α/β frozen bit for bit through the warm-up, moving after it, the training loss falling, and
each step function traced once across epochs (new learning rate each epoch, arch step joining late).
Training: its step traced once while the learning rate and drop-path probability change.
"""
import json

import numpy as np

from darts_jax.data.loader import Batch
from darts_jax.engine.config import with_fields
from darts_jax.spaces.pcdarts2d import SPACE
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype_text import load_genotype
from darts_jax.tasks.search import SearchConfig, search
from darts_jax.tasks.train import TrainConfig, train
from tests.step_traces import count_traces

BATCH = 4
TINY = ModelConfig(layers=1, init_channels=4, num_samples=2048)
# Four primitives (a pool, the strided skip, a separable conv; 'none' is free) keep the supernet's compile short.
TINY_SUPERNET = ModelConfig(layers=1, init_channels=4, num_samples=2048,
                            primitives=("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"))


class InMemoryLoader:
    """The training side of BatchLoader's interface, cycling over fixed batches."""

    def __init__(self, batches: list[Batch], steps_per_epoch: int):
        self.batches = batches
        self.steps_per_epoch = steps_per_epoch
        self._cursor = 0

    def __iter__(self):
        while True:
            batch = self.batches[self._cursor % len(self.batches)]
            self._cursor += 1
            yield batch

    def state(self) -> dict:
        return {"cursor": self._cursor}

    def restore(self, state: dict) -> None:
        self._cursor = state["cursor"]


def _random_batches(seed: int, count: int) -> list[Batch]:
    rng = np.random.default_rng(seed)
    labels = np.array([0, 1, 0, 1], np.int32)
    return [Batch((0.1 * rng.standard_normal((BATCH, TINY.num_samples))).astype(np.float32), rng.permutation(labels),
                  np.ones(BATCH, bool), ("",) * BATCH, ("",) * BATCH) for _ in range(count)]


def _read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_search_freezes_arch_in_warmup_then_learns(tmp_path, monkeypatch):
    spe = 3
    config = with_fields(SearchConfig(model=TINY_SUPERNET), batch_size=BATCH, epochs=3, warmup_epochs=1,
                         steps_per_epoch=spe, log_every=1, checkpoint_every=100)
    traces = count_traces(monkeypatch, ("arch_step", "weight_step"))
    weight_loader, arch_loader = (InMemoryLoader(_random_batches(seed, 2), spe) for seed in (0, 1))
    result = search(SPACE, config, weight_loader, arch_loader, tmp_path, quiet=True)
    assert result.step == config.loop.epochs * spe and not result.interrupted

    # α/β as the loop logs them at the start of each epoch (JSON round-trips float32 exactly).
    arch_at = {r["epoch"]: {k: np.asarray(v, np.float32) for k, v in r["arch"].items()}
               for r in _read_jsonl(tmp_path / "genotypes.jsonl")}
    assert sorted(arch_at) == [0, 1, 2]
    for name, initial in arch_at[0].items():
        np.testing.assert_array_equal(arch_at[1][name], initial, err_msg=f"{name} moved during warm-up")
    # With one reduction cell the normal cell's α gets no gradient (only decay), so the check is on 'reduce'.
    for name in ("alphas_reduce", "betas_reduce"):
        assert not np.array_equal(arch_at[2][name], arch_at[1][name]), f"{name} did not move after warm-up"
        assert not np.array_equal(np.asarray(result.state.arch[name]), arch_at[2][name])

    per_step = _read_jsonl(tmp_path / "metrics.jsonl")
    assert [("arch_loss" in r) for r in per_step] == [r["step"] > config.warmup_epochs * spe for r in per_step]
    epochs = _read_jsonl(tmp_path / "epochs.jsonl")
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert traces == {"arch_step": 1, "weight_step": 1}


def test_train_traces_its_step_once_as_drop_path_ramps(tmp_path, monkeypatch):
    config = with_fields(TrainConfig(model=TINY), batch_size=BATCH, epochs=2, steps_per_epoch=2, checkpoint_every=100)
    traces = count_traces(monkeypatch, ("train_step",))
    result = train(SPACE, config, load_genotype(config.genotype), InMemoryLoader(_random_batches(2, 2), 2), tmp_path,
                   quiet=True)
    assert result.step == 4
    # Epoch 1 runs with a new learning rate and drop-path probability, both passed as traced scalars.
    assert traces == {"train_step": 1}
