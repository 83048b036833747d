"""Task configs: one flat name per field across the nested configs, nothing repeated between search and
training but what they share (loop, optimiser, model, space), and the JSON round trip of a run."""
import dataclasses

import pytest

from darts_jax.engine import config as config_lib
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.tasks import common
from darts_jax.tasks.search import SearchConfig
from darts_jax.tasks.train import TrainConfig

SHARED = {"model", "space", "loop", "optim"}


@pytest.mark.parametrize("cls", [SearchConfig, TrainConfig])
def test_every_field_name_is_unique_across_the_nesting(cls):
    names = config_lib.field_names(cls(model=ModelConfig()))
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_search_and_train_share_fields_only_through_the_common_configs():
    own = {cls: {f.name for f in dataclasses.fields(cls)} - SHARED for cls in (SearchConfig, TrainConfig)}
    assert not own[SearchConfig] & own[TrainConfig]


def test_flat_fields_reach_their_nested_config_and_typos_are_refused():
    config = config_lib.with_fields(SearchConfig(model=ModelConfig()), epochs=7, lr=0.5, warmup_epochs=2,
                                    layers=3, mask=True)
    assert (config.loop.epochs, config.optim.lr, config.warmup_epochs, config.model.layers, config.model.mask) == \
        (7, 0.5, 2, 3, True)
    assert config.optim.batch_size == 64 and config.loop.seed == 123  # untouched defaults (spec §5.2)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['epoch'\]"):
        config_lib.with_fields(config, epoch=3)


@pytest.mark.parametrize("cls", [SearchConfig, TrainConfig])
def test_a_run_config_round_trips_through_json(cls, tmp_path):
    search_only = {"warmup_epochs": 1} if cls is SearchConfig else {}
    config = config_lib.with_fields(cls(model=ModelConfig(layers=2, primitives=("none", "skip_connect"))),
                                    epochs=3, init_from="elsewhere", **search_only)
    config_lib.save_json(config, tmp_path / "config.json")
    assert common.load_run_config(cls, tmp_path / "config.json") == config
    (tmp_path / "config.json").write_text('{"space": "pcdarts", "model": {"layers": "two"}}')
    with pytest.raises(ValueError, match=r"config.json.model.layers: expected int, got 'two'"):
        common.load_run_config(cls, tmp_path / "config.json")


def test_a_search_run_is_not_taken_for_a_training_run(tmp_path):
    search = config_lib.with_fields(SearchConfig(model=ModelConfig()), epochs=3, warmup_epochs=1)
    config_lib.save_json(search, tmp_path / "config.json")
    with pytest.raises(ValueError, match=r"is not the config of a train run \(it has arch_betas, .*warmup_epochs, "
                                         r"zero_one\).*pass --genotype WORKDIR/genotype.json to `darts-jax train`"):
        common.load_run_config(TrainConfig, tmp_path / "config.json")
