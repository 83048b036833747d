"""Test-wide JAX settings, applied before JAX starts.

Two fake CPU devices let the data-parallel tests run on any machine; reduced XLA optimisation
keeps compile time (the suite's main cost) down; no persistent compilation cache. Subprocesses inherit
these through the environment.
"""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "true")
# The command-line tests run in this process: a compilation cache they turned on would hold for every
# later test (JAX decides once per process). tests/engine/test_compile_cache.py tests it in subprocesses.
os.environ["DARTS_JAX_COMPILE_CACHE"] = "none"

import pytest  # noqa: E402  (after the environment above, before anything imports JAX)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """The tiny SynthSpoof corpus, generated once per session and shared by every test that reads data."""
    from darts_jax.data.synthspoof.corpus import make_corpus

    return make_corpus(tmp_path_factory.getbasetemp() / "synthspoof_tiny", size="tiny", seed=0, workers=2)
