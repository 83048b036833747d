"""The persistent compilation cache: a second process loads what the first compiled, and says so."""
import json
import os
import subprocess
import sys

import pytest

from darts_jax.engine import compile_cache

PROGRAM = """
import json, sys
import jax, jax.numpy as jnp
from darts_jax.engine import compile_cache
compile_cache.enable(sys.argv[1], min_compile_s=0)
print(compile_cache.summary())  # before anything compiled
f = jax.jit(lambda x: jnp.sin(x) @ jnp.cos(x).T + 3.0)
f(jnp.ones((8, 8))).block_until_ready()
counts = compile_cache.counts()
print(json.dumps({"used": counts.used, "requests": counts.requests, "hits": counts.hits}))
print(compile_cache.summary())
"""


def _run(directory):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-c", PROGRAM, str(directory)], capture_output=True, text=True, env=env,
                          timeout=120, check=True)
    lines = done.stdout.strip().splitlines()
    return lines[0], json.loads(lines[1]), lines[2]


def test_a_second_process_loads_the_first_ones_compiled_program(tmp_path):
    cache = tmp_path / "cache"
    before, first, said = _run(cache)
    assert "not used" in before
    assert first["used"] == 1 and first["requests"] >= 1 and first["hits"] == 0
    assert any(cache.iterdir())  # the program was written
    _, second, said = _run(cache)
    assert second["hits"] >= 1 and second["requests"] == first["requests"]
    assert f"{second['hits']} of {second['requests']} compiles loaded from it" in said


def test_the_cache_folder_is_checked_and_defaults_beside_the_workdir(tmp_path):
    assert compile_cache.enable(None) is None and compile_cache.enable("none") is None
    (tmp_path / "file").write_text("")
    with pytest.raises(RuntimeError, match="--compile-cache .*file is a file"):
        compile_cache.enable(tmp_path / "file")
    assert compile_cache.default_directory(tmp_path / "runs" / "search") == \
        (tmp_path / "runs" / compile_cache.NAME).resolve()
