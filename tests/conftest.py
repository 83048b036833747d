"""Test-wide JAX settings, applied before JAX starts.

Two fake CPU devices let the data-parallel tests run on any machine; reduced XLA optimisation
keeps compile time (the suite's main cost) down. Subprocesses inherit both through the environment.
"""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")

import pytest  # noqa: E402  (after the environment above, before anything imports JAX)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The tiny SynthSpoof corpus, generated once per session and shared by every test that reads data."""
    from darts_jax.data.synthspoof.corpus import make_corpus

    return make_corpus(tmp_path_factory.getbasetemp() / "synthspoof_tiny", size="tiny", seed=0, workers=2)
