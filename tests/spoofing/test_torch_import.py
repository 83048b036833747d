"""PyTorch checkpoints without PyTorch (issue 16 item 3): the restricted unpickler and the authors' network.

The fixture `data/authors_pcdarts_3x4.pth` was written by `torch.save` from the authors' own
models/model.py (3 layers, 4 channels, the published genotype, random weights and BN statistics), with
their network's logits on two seeded waveforms beside it (`_logits.npy`); see the README note of issue 16.
"""
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from darts_jax import cli
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype_text import load_genotype
from darts_jax.spaces.pcdarts2d.network import DerivedNetwork
from darts_jax.spoofing.export import load_model
from darts_jax.spoofing.pytorch_import import variables_from_state_dict
from darts_jax.spoofing.torch_checkpoint import UnsafeCheckpointError, load_state_dict
from tests.spoofing import torch_zip

FIXTURE = Path(__file__).parent / "data" / "authors_pcdarts_3x4.pth"
FIXTURE_MODEL = ModelConfig(layers=3, init_channels=4)
PUBLISHED = "pcdarts-lfcc"


def fixture_waves():
    """The two waveforms the fixture's logits were computed on (same seed and formulas)."""
    rng = np.random.default_rng(20240601)
    t = np.arange(64000) / 16000
    return np.stack([0.1 * rng.standard_normal(64000), 0.5 * np.sin(2 * np.pi * 440 * t) * (t < 2)]).astype(np.float32)


def test_a_written_checkpoint_round_trips_to_the_same_arrays(tmp_path):
    rng = np.random.default_rng(0)
    state = {"conv.weight": rng.standard_normal((3, 2, 3, 3)).astype(np.float32),
             "bn.running_var": rng.uniform(0.5, 2, 5).astype(np.float64),
             "bn.num_batches_tracked": np.array(7, np.int64),
             "half": rng.standard_normal(4).astype(np.float16)}
    path = tmp_path / "state.pth"
    torch_zip.write_state_dict(path, state)
    loaded = load_state_dict(path)
    assert list(loaded) == list(state)
    for name, array in state.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape, name
        np.testing.assert_array_equal(loaded[name], array, err_msg=name)


def test_views_into_a_shared_storage_are_rebuilt_with_offset_and_stride(tmp_path):
    storage = np.arange(20, dtype=np.float32)
    # A 3x4 tensor at offset 2, and its transpose (stride (1, 4)) at offset 0: what a view saves.
    tensors = {"block": ("0", 2, (3, 4), (4, 1)), "transposed": ("0", 0, (4, 3), (1, 4))}
    path = tmp_path / "views.pth"
    torch_zip.write_checkpoint(path, tensors, {"0": storage})
    loaded = load_state_dict(path)
    np.testing.assert_array_equal(loaded["block"], storage[2:14].reshape(3, 4))
    np.testing.assert_array_equal(loaded["transposed"], storage[:12].reshape(3, 4).T)


def test_a_view_reading_past_its_storage_is_refused(tmp_path):
    path = tmp_path / "bad.pth"
    torch_zip.write_checkpoint(path, {"w": ("0", 10, (3, 4), (4, 1))}, {"0": np.zeros(20, np.float32)})
    with pytest.raises(ValueError, match="malformed checkpoint .*reads past its storage"):
        load_state_dict(path)


def test_a_pickle_calling_os_system_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = (torch_zip.PROTO_2 + torch_zip.op_global("os", "system")
               + torch_zip.op_tuple([torch_zip.op_text(f"touch {marker}")]) + torch_zip.REDUCE + torch_zip.STOP)
    path = tmp_path / "evil.pth"
    torch_zip.write_archive(path, payload, {})
    # The payload is a working exploit (harmless here): plain pickle runs it.
    pickle.loads(payload)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafeCheckpointError, match="os.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_a_legacy_or_foreign_file_is_refused(tmp_path):
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(ValueError, match="not a zip-format PyTorch checkpoint"):
        load_state_dict(path)
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="data.pkl"):
        load_state_dict(tmp_path / "other.zip")


def test_the_imported_network_gives_the_authors_logits():
    genotype = load_genotype(PUBLISHED)
    variables = variables_from_state_dict(load_state_dict(FIXTURE), FIXTURE_MODEL, genotype)
    logits, _ = DerivedNetwork(FIXTURE_MODEL, genotype).apply(variables, fixture_waves(), train=False)
    expected = np.load(FIXTURE.with_name(FIXTURE.stem + "_logits.npy"))
    # float32 through a different FFT and conv implementation.
    np.testing.assert_allclose(np.asarray(logits), expected, rtol=1e-4, atol=1e-5)


def _without(state, name):
    return {key: value for key, value in state.items() if key != name}


def test_a_missing_or_an_extra_tensor_is_an_error_naming_it(tmp_path):
    state = load_state_dict(FIXTURE)
    genotype = load_genotype(PUBLISHED)
    missing = "cells.1._ops.0.op.6.weight"
    path = tmp_path / "missing.pth"
    torch_zip.write_state_dict(path, _without(state, missing))
    with pytest.raises(ValueError, match=rf"missing tensor\(s\) {missing}"):
        variables_from_state_dict(load_state_dict(path), FIXTURE_MODEL, genotype)
    extra = dict(state, **{"cells.0.extra.weight": np.zeros(3, np.float32)})
    with pytest.raises(ValueError, match=r"1 tensor\(s\) not used by this network: cells.0.extra.weight"):
        variables_from_state_dict(extra, FIXTURE_MODEL, genotype)


def test_a_checkpoint_of_another_size_is_refused_with_the_shapes():
    with pytest.raises(ValueError, match=r"stem0.0.weight: shape \(3, 3, 1, 2\) after layout change, the network "
                                         r"needs \(3, 3, 1, 4\)"):
        variables_from_state_dict(load_state_dict(FIXTURE), ModelConfig(layers=3, init_channels=8),
                                  load_genotype(PUBLISHED))


def test_import_pytorch_writes_a_model_folder(tmp_path, capsys):
    out = tmp_path / "model"
    assert cli.main(["import-pytorch", str(FIXTURE), "--genotype", PUBLISHED, "--layers", "3",
                     "--init-channels", "4", "--frontend", "lfcc", "--out", str(out)]) == 0
    assert f"model written to {out}" in capsys.readouterr().out
    space, model, genotype, variables = load_model(out)
    assert (model.layers, model.init_channels, model.frontend) == (3, 4, "lfcc")
    logits, _ = space.network(model, genotype).apply(variables, fixture_waves(), train=False)
    np.testing.assert_allclose(np.asarray(logits), np.load(FIXTURE.with_name(FIXTURE.stem + "_logits.npy")),
                               rtol=1e-4, atol=1e-5)
    assert cli.main(["import-pytorch", str(FIXTURE), "--genotype", PUBLISHED, "--layers", "3",
                     "--init-channels", "4", "--frontend", "spec", "--out", str(tmp_path / "m2")]) == 2
    assert "feature.lfcc_fb" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "m2")
