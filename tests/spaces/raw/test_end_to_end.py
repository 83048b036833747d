"""Raw PC-DARTS end to end on the tiny SynthSpoof corpus, through the command line: a search with a
learnable sinc, the derived genotype trained with the searched band edges frozen, then scored.

The commands run in subprocesses on one CPU device, as the suite's runs do (tests/conftest.py says why).
"""
import json
import os
import subprocess
import sys

import numpy as np

from darts_jax.engine.checkpoint import load_weights
from darts_jax.spaces.raw.frontend import band_edges

TINY = ["--space", "raw", "--layers", "2", "--init-channels", "4", "--num-samples", "6124"]
RUN = ["--batch-size", "2", "--epochs", "1", "--steps-per-epoch", "2", "--lr", "0.01", "--lr-min", "0.01",
       "--quiet", "--workers", "2"]


def darts_jax(*args, cache=None) -> str:
    # XLA's full optimisation, unlike the rest of the suite: the raw network's steps run slowly enough
    # unoptimised that the three commands took 130 s against 67 s optimised (compiles included).
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=1",
           "JAX_DISABLE_MOST_OPTIMIZATIONS": "false"}
    if cache is not None:  # shared by the commands, as a user's runs share theirs
        env["DARTS_JAX_COMPILE_CACHE"] = str(cache)
    done = subprocess.run([sys.executable, "-m", "darts_jax", *args], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_search_derive_train_evaluate_score(tiny_corpus, tmp_path):
    search_dir, train_dir, cache = tmp_path / "search", tmp_path / "train", tmp_path / "cache"
    out = darts_jax("search", *TINY, *RUN, "--data", str(tiny_corpus), "--workdir", str(search_dir),
                    "--learnable-sinc", "--warmup-epochs", "0", "--hessian-every", "0")
    assert out.strip().splitlines()[-1].startswith("Genotype(normal=[(")
    config = json.loads((search_dir / "config.json").read_text())
    assert config["space"] == "raw" and config["model"]["learnable_sinc"] and config["warmup_epochs"] == 0
    assert config["optim"]["batch_size"] == 2 and config["arch_lr"] == 6e-4  # the authors' α/β optimiser
    _, searched = load_weights(search_dir)
    learned_low = np.asarray(searched["params"]["stem"]["frontend"]["sinc"]["low_hz_"])
    initial_low, _ = band_edges("mel", 8)
    assert not np.allclose(learned_low, initial_low)  # the band edges moved

    darts_jax("train", *TINY, *RUN, "--data", str(tiny_corpus), "--workdir", str(train_dir),
              "--genotype", str(search_dir / "genotype.json"), "--sinc-from", str(search_dir), cache=cache)
    model = json.loads((train_dir / "config.json").read_text())["model"]
    np.testing.assert_allclose(model["sinc_low_hz"], learned_low, rtol=1e-6)  # frozen copy of the search's
    assert json.loads((train_dir / "genotype.json").read_text()) == json.loads(
        (search_dir / "genotype.json").read_text())
    _, trained = load_weights(train_dir)
    assert "frontend" not in trained["params"]["stem"]  # a frozen sinc has no parameters in training

    # At the training run's batch, scoring is the program its dev scoring compiled.
    assert "EER" in darts_jax("evaluate", "--workdir", str(train_dir), "--data", str(tiny_corpus), "--batch-size", "2",
                              cache=cache)
    lines = (train_dir / "scores-eval.txt").read_text().splitlines()
    protocols = tiny_corpus / "ASVspoof2019_LA_cm_protocols"
    protocol = (protocols / "ASVspoof2019.LA.cm.eval.trl.txt").read_text().splitlines()
    assert len(lines) == len(protocol)
    fields = [line.split() for line in lines]
    assert {f[2] for f in fields} == {"bonafide", "spoof"}
    scores = np.array([float(f[3]) for f in fields])
    assert np.all(np.abs(scores) <= 1)  # cos θ of the bona fide column
