"""The stacked search against single-seed searches of the same seeds (the toy space of the seam test)."""
import json

import jax
import numpy as np
import pytest

from darts_jax.engine import config as config_lib
from darts_jax.tasks.search import search
from darts_jax.tasks.seed_search import SeedSearchConfig, search_seeds
from tests.engine.test_space_seam import TOY, VectorLoader, _search_config

SEEDS = (3, 5)


def _loaders(seed):
    # Each seed its own data order, as the pipeline gives it.
    return VectorLoader(10 * seed), VectorLoader(10 * seed + 1)


@pytest.fixture(scope="module")
def single_and_stacked(tmp_path_factory):
    base = _search_config(epochs=3)
    singles = []
    for seed in SEEDS:
        weights, archs = _loaders(seed)
        singles.append(search(TOY, config_lib.with_fields(base, seed=seed), weights, archs,
                              tmp_path_factory.mktemp(f"single{seed}"), quiet=True))
    pairs = [_loaders(seed) for seed in SEEDS]
    workdir = tmp_path_factory.mktemp("stacked")
    stacked = search_seeds(TOY, SeedSearchConfig(base, SEEDS), [w for w, _ in pairs], [a for _, a in pairs],
                           workdir, quiet=True)
    return singles, stacked, workdir


def test_each_seed_of_the_stacked_search_is_its_single_seed_search(single_and_stacked):
    singles, stacked, _ = single_and_stacked
    for single, one in zip(singles, stacked):
        assert one.step == single.step
        for name in ("arch", "params", "batch_stats", "opt_a"):
            jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
                         getattr(one.state, name), getattr(single.state, name))
        assert one.genotype == single.genotype
    # The seeds really differ, so the comparison above could fail.
    assert not np.allclose(singles[0].state.arch["alphas"], singles[1].state.arch["alphas"])


def test_each_seed_gets_its_genotype_file(single_and_stacked):
    singles, _, workdir = single_and_stacked
    for seed, single in zip(SEEDS, singles):
        written = (workdir / f"seed-{seed}" / "genotype.json").read_text()
        assert TOY.genotype_from_dict(json.loads(written), None, "test") == single.genotype


def test_repeated_or_negative_seeds_are_refused():
    with pytest.raises(ValueError, match="seeds: give distinct"):
        SeedSearchConfig(_search_config(epochs=2), (1, 1))
