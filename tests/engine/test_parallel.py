"""darts_jax.engine.parallel: the warning before a run whose steps sum over several CPU devices."""
import warnings

import pytest

from darts_jax.engine import parallel


def test_a_run_over_several_cpu_devices_is_warned_of_and_one_over_one_device_is_not():
    with pytest.warns(RuntimeWarning, match=r"sum over 2 CPU devices: .* abort the process after 40 s"):
        parallel.warn_of_cpu_all_reduce(parallel.local_devices(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel.warn_of_cpu_all_reduce(parallel.local_devices(1))
