"""Several hosts, for real: two processes joined by `jax.distributed` on a localhost coordinator (CPU collectives
over gloo), one device each, each reading its own shard of the corpus, search as one program.

Both must end with the same α/β and genotype, and these must equal a single process's on the same global
batch (one process with two devices, so that every device holds the same rows as in the two-process run).
Users of DARTS tools report per-GPU architectures that differ (microsoft/nni#5013); this shows ours cannot.
"""
import json
import os
import socket
import subprocess
import sys

import jax
import numpy as np
import pytest

from darts_jax.engine import config as config_lib, parallel
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spoofing import pipeline
from darts_jax.tasks.search import SearchConfig

CONFIG = config_lib.with_fields(
    SearchConfig(model=ModelConfig(layers=1, init_channels=4, num_samples=2048, mask=True,
                                   primitives=("max_pool_3x3", "skip_connect", "sep_conv_3x3"))),
    batch_size=4, epochs=3, warmup_epochs=1, steps_per_epoch=3, seed=11, log_every=1, checkpoint_every=100)

HOST = """
import json, sys
import jax
jax.distributed.initialize(coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]))
import numpy as np
from darts_jax.engine import config
from darts_jax.spaces.pcdarts2d import ModelConfig
from darts_jax.spoofing import pipeline
from darts_jax.tasks.search import SearchConfig
search_config = config.from_dict(SearchConfig, json.loads(sys.argv[3]), field_types={"model": ModelConfig})
result = pipeline.run_search(search_config, sys.argv[4], sys.argv[5], monitor_dev=False, quiet=True, workers=2)
with open(sys.argv[6], "w") as out:
    json.dump({"process_count": jax.process_count(), "device_count": jax.device_count(),
               "local_devices": len(jax.local_devices()), "genotype": result.genotype.to_dict(),
               "arch": {k: np.asarray(v).tolist() for k, v in result.state.arch.items()}}, out)
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def two_hosts(tiny_corpus, tmp_path_factory):
    root = tmp_path_factory.mktemp("two_hosts")
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": os.environ["XLA_FLAGS"].replace("device_count=2", "device_count=1")}
    address = f"127.0.0.1:{_free_port()}"
    config = json.dumps(config_lib.to_dict(CONFIG))
    processes = [subprocess.Popen([sys.executable, "-c", HOST, address, str(rank), config,
                                   str(tiny_corpus), str(root / "run"), str(root / f"host{rank}.json")],
                                  env=env, stdout=subprocess.DEVNULL, stderr=open(root / f"host{rank}.stderr", "w"))
                 for rank in range(2)]
    for rank, process in enumerate(processes):
        try:
            code = process.wait(timeout=400)
        finally:
            for other in processes:
                if other.poll() is None and process.returncode not in (None, 0):
                    other.kill()
        assert code == 0, (root / f"host{rank}.stderr").read_text()[-3000:]
    return [json.loads((root / f"host{rank}.json").read_text()) for rank in range(2)], root / "run"


def test_two_processes_search_as_one_program(two_hosts):
    hosts, _ = two_hosts
    for host in hosts:
        assert (host["process_count"], host["device_count"], host["local_devices"]) == (2, 2, 1)
    assert hosts[0]["genotype"] == hosts[1]["genotype"]
    for name in hosts[0]["arch"]:
        np.testing.assert_array_equal(hosts[0]["arch"][name], hosts[1]["arch"][name], err_msg=name)


def test_two_hosts_equal_one_host_on_the_same_global_batch(two_hosts, tiny_corpus, tmp_path, monkeypatch,
                                                          one_device_by_default):
    hosts, run = two_hosts
    assert len(jax.local_devices()) == 2
    monkeypatch.setattr(parallel, "local_devices", one_device_by_default)  # both, as the module says
    single = pipeline.run_search(CONFIG, tiny_corpus, tmp_path, monitor_dev=False, quiet=True, workers=2)
    assert single.genotype.to_dict() == hosts[0]["genotype"]
    for name, value in single.state.arch.items():
        np.testing.assert_allclose(hosts[0]["arch"][name], np.asarray(value), rtol=0, atol=1e-6, err_msg=name)
    # Only process 0 wrote the run's logs; the checkpoint holds the same genotype.
    epochs = [json.loads(line) for line in (run / "epochs.jsonl").read_text().splitlines()]
    assert [record["epoch"] for record in epochs] == [0, 1, 2]
    assert json.loads((run / "genotype.json").read_text()) == hosts[0]["genotype"]
