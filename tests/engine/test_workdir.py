"""A run's folder: refused when unusable, one run at a time (the lock), and a previous run moved aside."""
import json
import os
import socket
import subprocess
import sys

import pytest

from darts_jax.engine import workdir as workdir_lib
from darts_jax.engine.workdir import WorkdirError


def test_a_file_is_no_workdir(tmp_path):
    path = tmp_path / "run"
    path.write_text("mine")
    with pytest.raises(WorkdirError, match="is a file; give a folder"):
        workdir_lib.prepare(path)
    assert path.read_text() == "mine"


def test_an_unwritable_workdir_is_refused(tmp_path, monkeypatch):
    # As root (CI) permission bits do not bind, so the check itself is made to answer no.
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(WorkdirError, match="is not writable by this user"):
        workdir_lib.prepare(tmp_path)


def test_a_live_lock_refuses_a_second_run_and_is_released(tmp_path):
    said = []
    with workdir_lib.locked(tmp_path, said.append):
        holder = json.loads((tmp_path / workdir_lib.LOCK).read_text())
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        with pytest.raises(WorkdirError, match=f"is in use by pid {os.getpid()} on {socket.gethostname()}"):
            with workdir_lib.locked(tmp_path, said.append):
                pass
    assert not (tmp_path / workdir_lib.LOCK).exists()
    assert said == []


def test_a_stale_lock_is_reported_and_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / workdir_lib.LOCK).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                          "started": "2026-01-01T00:00:00+00:00"}))
    said = []
    with workdir_lib.locked(tmp_path, said.append):
        assert json.loads((tmp_path / workdir_lib.LOCK).read_text())["pid"] == os.getpid()
    assert len(said) == 1 and f"pid {dead.pid}" in said[0] and "no longer running" in said[0]


def test_a_lock_held_on_another_host_is_refused(tmp_path):
    (tmp_path / workdir_lib.LOCK).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "t"}))
    with pytest.raises(WorkdirError, match="in use by pid 1 on elsewhere"):
        with workdir_lib.locked(tmp_path):
            pass
    assert (tmp_path / workdir_lib.LOCK).exists()


def test_restart_moves_the_previous_run_aside(tmp_path):
    for step in (3, 6):
        (tmp_path / "checkpoints" / str(step)).mkdir(parents=True)
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "scores-eval.txt").write_text("kept")
    said = []
    aside = workdir_lib.move_previous_run_aside(tmp_path, said.append)
    assert aside.parent == tmp_path / workdir_lib.PREVIOUS
    assert sorted(p.name for p in tmp_path.iterdir()) == [workdir_lib.PREVIOUS]
    assert sorted(p.name for p in aside.iterdir()) == ["checkpoints", "metrics.jsonl", "scores-eval.txt"]
    assert (aside / "scores-eval.txt").read_text() == "kept"
    assert said == [f"--restart: the previous run (2 checkpoint(s), steps [3, 6], and its logs) moved to {aside}; "
                    f"this run starts afresh"]
    # A second restart keeps the first one's folder.
    (tmp_path / "config.json").write_text("{}")
    second = workdir_lib.move_previous_run_aside(tmp_path, said.append)
    assert second != aside and aside.is_dir() and (second / "config.json").exists()
    assert workdir_lib.move_previous_run_aside(tmp_path, said.append) is None
