"""`export --format stablehlo` (issue 16 item 4): the eval forward runs with JAX alone, any batch size."""
import json
import subprocess
import sys

import numpy as np
import pytest

from darts_jax import cli
from darts_jax.spoofing.export import load_model
from darts_jax.spoofing.predict import load_scorer
from tests.spoofing.models import make_model_folder

# Run in a fresh interpreter: only jax and numpy, and proof that darts_jax was never imported.
RUNNER = """
import sys, numpy as np, jax
exported = jax.export.deserialize(bytearray(open(sys.argv[1] + "/forward.stablehlo", "rb").read()))
waves = np.load(sys.argv[2])
for size in (2, 5):
    np.save(f"{sys.argv[3]}/scores_{size}.npy", np.asarray(exported.call(waves[:size])))
assert not any(name.split(".")[0] == "darts_jax" for name in sys.modules), "darts_jax was imported"
"""


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("model") / "model", seed=4)


def test_stablehlo_export_runs_without_darts_jax_and_matches_the_model_folder(model_folder, tmp_path, capsys):
    portable = tmp_path / "portable"
    assert cli.main(["export", "--model", str(model_folder), "--format", "stablehlo", "--out", str(portable)]) == 0
    assert f"model written to {portable}" in capsys.readouterr().out
    manifest = json.loads((portable / "portable.json").read_text())
    assert (manifest["num_samples"], manifest["sample_rate"]) == (64000, 16000)
    waves = (0.2 * np.random.default_rng(9).standard_normal((5, 64000))).astype(np.float32)
    np.save(tmp_path / "waves.npy", waves)
    subprocess.run([sys.executable, "-c", RUNNER, str(portable), str(tmp_path / "waves.npy"), str(tmp_path)],
                   check=True, cwd=tmp_path)
    space, model, genotype, variables = load_model(model_folder)
    logits, _ = space.network(model, genotype).apply(variables, waves, train=False)
    expected = np.asarray(logits)[:, 1]
    for size in (2, 5):
        np.testing.assert_allclose(np.load(tmp_path / f"scores_{size}.npy"), expected[:size], rtol=1e-5, atol=1e-5)
    # predict --model reads both formats alike.
    scores = {folder: load_scorer(folder, batch_size=5).forward(waves) for folder in (model_folder, portable)}
    np.testing.assert_allclose(scores[portable], scores[model_folder], rtol=1e-5, atol=1e-5)


def test_export_refuses_a_non_empty_out_folder(model_folder, tmp_path, capsys):
    (tmp_path / "keep.txt").write_text("mine")
    assert cli.main(["export", "--model", str(model_folder), "--format", "stablehlo", "--out", str(tmp_path)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"


def test_export_adds_a_calibration_to_a_copy_of_a_model_folder(model_folder, tmp_path, capsys):
    from darts_jax.spoofing.calibration import model_calibration, read_calibration

    labels = ["bonafide"] * 3 + ["spoof"] * 3
    lines = [f"U{i} {'-' if key == 'bonafide' else 'A07'} {key} {score}"
             for i, (key, score) in enumerate(zip(labels, [2.0, 1.0, -0.5, 0.5, -1.0, -2.0]))]
    (tmp_path / "dev.txt").write_text("\n".join(lines) + "\n")
    assert cli.main(["calibrate", "--cm-scores", str(tmp_path / "dev.txt"), "--out", str(tmp_path / "cal.json")]) == 0
    for fmt in ("folder", "stablehlo"):
        out = tmp_path / fmt
        assert cli.main(["export", "--model", str(model_folder), "--calibration", str(tmp_path / "cal.json"),
                         "--format", fmt, "--out", str(out)]) == 0
        assert model_calibration(out) == read_calibration(tmp_path / "cal.json")
    assert model_calibration(model_folder) is None  # the source folder is left as it was
    capsys.readouterr()
