"""The seam between the engine and a search space: a toy space defined entirely in this file runs search,
derivation, training, resumption and scoring through the same tasks, driver and checkpoints as PC-DARTS.

The space: 16-dim vectors, two mixed edges in series, each choosing between a ReLU-Dense layer and the
identity, then BatchNorm and a linear head. Its class depends on |x_0| > 0.6745 (the median of |N(0, 1)|),
which a linear head alone cannot separate, so the search has a reason to prefer the nonlinear op.
"""
import dataclasses
import json
import os
import signal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.data.loader import Batch
from darts_jax.engine import config as config_lib
from darts_jax.engine.space import SearchSpace, get_space, register
from darts_jax.nn.layers import BatchNorm
from darts_jax.relaxations import softmax_weights
from darts_jax.tasks import common
from darts_jax.tasks.evaluate import evaluate
from darts_jax.tasks.search import SearchConfig, search
from darts_jax.tasks.train import TrainConfig, train

OPS = ("dense", "identity")
EDGES = 2
DIM, BATCH = 16, 8


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    width: int = DIM
    num_classes: int = 2


class ToyOp(nn.Module):
    op: str

    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Dense(x.shape[-1])(x)) if self.op == "dense" else x


class ToySupernet(nn.Module):
    config: ToyConfig

    @nn.compact
    def __call__(self, x_BxD, arch, train: bool):
        weights_ExO = softmax_weights(None, arch["alphas"])
        for edge in range(EDGES):
            x_BxD = sum(weights_ExO[edge, o] * ToyOp(op, name=f"edge{edge}_{op}")(x_BxD) for o, op in enumerate(OPS))
        return nn.Dense(self.config.num_classes)(BatchNorm(affine=True)(x_BxD, train))


class ToyNetwork(nn.Module):
    config: ToyConfig
    genotype: tuple[str, ...]

    @nn.compact
    def __call__(self, x_BxD, train: bool, drop_prob=None):
        for edge, op in enumerate(self.genotype):
            x_BxD = ToyOp(op, name=f"edge{edge}_{op}")(x_BxD)
        embedding = BatchNorm(affine=True)(x_BxD, train)
        return nn.Dense(self.config.num_classes)(embedding), embedding


def _init_supernet(seed, model):
    arch = {"alphas": 1e-3 * jax.random.normal(jax.random.key(seed), (EDGES, len(OPS)))}
    return ToySupernet(model).init(jax.random.key(seed + 1), jnp.zeros((1, model.width)), arch, False), arch


def _genotype_from_dict(data, model, where):
    if not isinstance(data, dict) or set(data) != {"ops"} or any(op not in OPS for op in data["ops"]):
        raise ValueError(f"{where}: a toy genotype is {{'ops': [one of {OPS} per edge]}}")
    return tuple(data["ops"])


TOY = register(SearchSpace(
    name="toy-mlp",
    config_type=ToyConfig,
    primitives=OPS,
    supernet=ToySupernet,
    network=ToyNetwork,
    init_supernet=_init_supernet,
    init_network=lambda seed, model, genotype: ToyNetwork(model, genotype).init(
        jax.random.key(seed), jnp.zeros((1, model.width)), False),
    derive_genotype=lambda arch, model: tuple(OPS[i] for i in np.argmax(np.asarray(arch["alphas"]), axis=1)),
    genotype_to_dict=lambda genotype: {"ops": list(genotype)},
    genotype_from_dict=_genotype_from_dict,
    load_genotype=lambda spec, model: _genotype_from_dict(json.loads(spec), model, "genotype"),
    genotype_text=lambda genotype: " -> ".join(genotype),
    shape_fields=("width", "num_classes"),
))


class VectorLoader:
    """Endless shuffled batches of the toy task, resumable by its cursor; one_pass for scoring."""

    def __init__(self, seed: int, size: int = 64, steps_per_epoch: int = 4, interrupt_at: int | None = None):
        rng = np.random.default_rng(seed)
        self.x = rng.standard_normal((size, DIM)).astype(np.float32)
        self.y = (np.abs(self.x[:, 0]) > 0.6745).astype(np.int32)
        self.steps_per_epoch, self.cursor, self.interrupt_at = steps_per_epoch, 0, interrupt_at

    def _batch(self, rows):
        return Batch(self.x[rows], self.y[rows], np.ones(len(rows), bool), tuple(f"u{r}" for r in rows),
                     tuple("-" if self.y[r] else "toy" for r in rows))

    def __iter__(self):
        while True:
            rows = np.random.default_rng(self.cursor).choice(len(self.y), BATCH, replace=False)
            self.cursor += 1
            if self.cursor == self.interrupt_at:  # as a user's Ctrl-C mid-epoch
                os.kill(os.getpid(), signal.SIGINT)
            yield self._batch(rows)

    def one_pass(self):
        for start in range(0, len(self.y), BATCH):
            yield self._batch(np.arange(start, start + BATCH))

    def state(self):
        return {"cursor": self.cursor}

    def restore(self, state):
        self.cursor = state["cursor"]


def _search_config(epochs):
    return config_lib.with_fields(SearchConfig(model=ToyConfig(), space=TOY.name), batch_size=BATCH, epochs=epochs,
                                  warmup_epochs=1, arch_lr=0.05, lr=0.05, lr_min=0.01, seed=3, log_every=1,
                                  checkpoint_every=100)


def _search(workdir, epochs, interrupt_at=None):
    return search(TOY, _search_config(epochs), VectorLoader(0, interrupt_at=interrupt_at), VectorLoader(1), workdir,
                  quiet=True)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("toy_search")
    return workdir, _search(workdir, epochs=4)


def test_search_derives_the_genotype_of_its_final_alphas(searched):
    workdir, result = searched
    alphas = np.asarray(result.state.arch["alphas"])
    expected = tuple(OPS[int(np.argmax(row))] for row in alphas)
    assert result.genotype == expected
    assert json.loads((workdir / "genotype.json").read_text()) == {"ops": list(expected)}
    records = [json.loads(line) for line in (workdir / "genotypes.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    # Warm-up freezes α (epochs 0 -> 1), the searched epochs move it.
    np.testing.assert_array_equal(records[1]["arch"]["alphas"], records[0]["arch"]["alphas"])
    assert not np.allclose(records[3]["arch"]["alphas"], records[1]["arch"]["alphas"])
    # The saved config names the toy space and reads back into its model config.
    assert common.load_run_config(SearchConfig, workdir / "config.json") == _search_config(4)


def test_a_resumed_search_matches_the_uninterrupted_one(searched, tmp_path):
    _, uninterrupted = searched
    first = _search(tmp_path, epochs=4, interrupt_at=10)
    assert first.interrupted and first.step == 10
    resumed = _search(tmp_path, epochs=4)
    assert resumed.step == uninterrupted.step == 16
    jax.tree.map(np.testing.assert_array_equal, resumed.state, uninterrupted.state)


def test_train_the_derived_network_and_score_it(searched, tmp_path):
    _, result = searched
    config = config_lib.with_fields(TrainConfig(model=ToyConfig(), space=TOY.name, genotype="unused"),
                                    batch_size=BATCH, epochs=6, lr=0.05, lr_min=0.01, seed=4, log_every=1,
                                    checkpoint_every=100)
    trained = train(TOY, config, result.genotype, VectorLoader(2), tmp_path, quiet=True)
    assert trained.step == 24
    epochs = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    variables = {"params": trained.state.params, "batch_stats": trained.state.batch_stats}
    scores = evaluate(TOY, ToyConfig(), result.genotype, variables, VectorLoader(5))
    # Against the network applied directly, outside the engine.
    loader = VectorLoader(5)
    logits, _ = ToyNetwork(ToyConfig(), result.genotype).apply(variables, loader.x, train=False)
    np.testing.assert_allclose(scores.scores, np.asarray(logits[:, 1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(scores.labels, loader.y)


def test_a_checkpoint_of_another_architecture_is_refused(searched, tmp_path):
    from darts_jax.engine.checkpoint import CheckpointError

    workdir, _ = searched
    wider = dataclasses.replace(_search_config(5), model=ToyConfig(width=DIM, num_classes=3))
    with pytest.raises(CheckpointError, match="num_classes: checkpoint has 2, this run has 3"):
        search(TOY, wider, VectorLoader(0), VectorLoader(1), workdir, quiet=True)


def test_the_space_is_found_by_name():
    assert get_space("toy-mlp") is TOY
    with pytest.raises(ValueError, match="already registered"):
        register(dataclasses.replace(TOY))

