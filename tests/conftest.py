"""Test-wide JAX settings, applied before JAX starts.

Two fake CPU devices let the data-parallel tests run on any machine, but runs use one of them unless a
test asks for more (`one_device_by_default`); reduced XLA optimisation keeps compile time (the suite's
main cost) down; no persistent compilation cache. Subprocesses inherit these through the environment.
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


@pytest.fixture(scope="session", autouse=True)
def one_device_by_default():
    """Runs that are not given `devices=` take one device; the fixture's value takes every local device.

    On two fake devices and two cores, XLA's CPU runtime now and then leaves one device waiting in an
    all-reduce for a partner that never arrives, and aborts the process after 40 s (SIGABRT, exit 134):
    a raw search on two devices did so in 3 of 4 runs (once with --xla_cpu_multi_thread_eigen=false),
    and CI once in a 2-D search. On one device an all-reduce waits for nobody. So only the tests of
    data-parallel behaviour, which pass their devices, run on two.
    """
    from darts_jax.engine import parallel

    every_device = parallel.local_devices
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "local_devices", lambda count=1: every_device(count))
        yield every_device
