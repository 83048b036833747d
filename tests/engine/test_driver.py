"""The run driver on a stand-in task (a counter state, no network): when metrics are read, what a
non-finite value names, epoch summaries after a resume, and initial weights from another run."""
import json
import math
import shutil

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.engine import driver, parallel
from darts_jax.engine.checkpoint import CheckpointError, RunCheckpoints
from darts_jax.engine.config import LoopConfig
from darts_jax.engine.runlog import RunLog
from darts_jax.engine.state import TrainState


class Probe:
    """A metric value that records when the driver reads it (float(v[0]) after device_get)."""

    def __init__(self, log, step, value):
        self.log, self.step, self.value = log, step, value

    def __getitem__(self, index):
        self.log.append(("read", self.step))
        return self.value


def _state(params=None):
    params = params if params is not None else {"w": jnp.zeros(3)}
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, batch_stats={"mean": jnp.ones(2)},
                      opt={}, key=jnp.zeros(2, jnp.uint32))


def _counting_step(log, values=lambda step: 1.0):
    """A step that adds 1 to every weight; its loss at step n (1-based) is values(n)."""
    increment = jax.pmap(lambda s: s.replace(step=s.step + 1, params=jax.tree.map(lambda w: w + 1, s.params)),
                         axis_name=parallel.AXIS, devices=parallel.local_devices(1))

    def step_fn(device_state, epoch, iterators):
        device_state = increment(device_state)
        n = len([entry for entry in log if entry[0] == "dispatch"]) + 1 + step_fn.offset
        log.append(("dispatch", n))
        return device_state, {"loss": Probe(log, n, values(n))}

    step_fn.offset = 0
    return step_fn


def _run(workdir, step_fn, epochs=2, epoch_steps=3, state=None, hooks=driver.Hooks(), **loop):
    loop = LoopConfig(**{"epochs": epochs, "log_every": 1, "checkpoint_every": 100, **loop})
    return driver.run(loop=loop, config=loop, workdir=workdir, state=state or _state(), loaders={}, step_fn=step_fn,
                      devices=parallel.local_devices(1), log=RunLog(workdir, quiet=True), epoch_steps=epoch_steps,
                      hooks=hooks)


def test_metrics_are_read_one_step_late_and_synced_at_epoch_ends(tmp_path):
    log = []
    result = _run(tmp_path, _counting_step(log))
    assert result.step == 6 and int(result.state.step) == 6
    # Step n's metrics are read only once step n + 1 is dispatched, except at an epoch's last step,
    # where the summary and the checkpoint need them.
    assert log == [("dispatch", 1), ("dispatch", 2), ("read", 1), ("dispatch", 3), ("read", 2), ("read", 3),
                   ("dispatch", 4), ("dispatch", 5), ("read", 4), ("dispatch", 6), ("read", 5), ("read", 6)]
    logged = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5, 6]


def test_a_non_finite_value_names_its_step_though_read_late(tmp_path):
    with pytest.raises(FloatingPointError, match="step 2: non-finite loss = nan; stopping, no checkpoint"):
        _run(tmp_path, _counting_step([], values=lambda n: math.nan if n == 2 else 1.0))


def test_an_error_mid_run_leaves_the_checkpoint_in_flight_committed(tmp_path):
    counting = _counting_step([])

    def failing(device_state, epoch, iterators):
        if counting.offset + len([e for e in log if e[0] == "dispatch"]) == 2:
            raise ValueError("LA_T_0000007.flac: 1 NaN or infinite samples")
        return counting(device_state, epoch, iterators)

    log = []
    counting = _counting_step(log)
    with pytest.raises(ValueError, match="LA_T_0000007.flac"):
        _run(tmp_path, failing, epochs=1, epoch_steps=4, checkpoint_every=2)
    # Right as the error surfaces, the asynchronous save of step 2 is already complete.
    checkpoints = RunCheckpoints(tmp_path, 3)
    try:
        assert checkpoints.steps() == [2]
        assert int(checkpoints.restore_latest(_state())[1].step) == 2
    finally:
        checkpoints.close()
    assert not (tmp_path / ".darts_jax.lock").exists()


def test_epoch_summary_after_a_mid_epoch_resume_is_the_uninterrupted_one(tmp_path):
    # A run whose checkpoint is at step 4 (mid epoch 1), resumed: epoch 1's summary still averages
    # steps 4, 5 and 6, the epoch's sums so far travelling in the checkpoint.
    _run(tmp_path, _counting_step([], values=float), epochs=2, epoch_steps=3, checkpoint_every=4)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [3, 4, 6]
    uninterrupted = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert [r["loss"] for r in uninterrupted] == [pytest.approx(2.0), pytest.approx(5.0)]
    shutil.rmtree(tmp_path / "checkpoints" / "6")
    step_fn = _counting_step([], values=float)
    step_fn.offset = 4
    _run(tmp_path, step_fn, epochs=2, epoch_steps=3)
    resumed = [json.loads(line) for line in (tmp_path / "epochs.jsonl").read_text().splitlines()]
    assert resumed == uninterrupted


def test_init_from_takes_the_weights_of_another_run(tmp_path):
    source = _run(tmp_path / "source", _counting_step([]), epochs=1, epoch_steps=2)
    chex.assert_trees_all_equal(source.state.params, {"w": np.full(3, 2.0, np.float32)})
    # A fresh run from those weights, counted on from 2 (its own step and optimiser start afresh).
    result = _run(tmp_path / "target", _counting_step([]), epochs=1, epoch_steps=1, init_from=str(tmp_path / "source"))
    chex.assert_trees_all_equal(result.state.params, {"w": np.full(3, 3.0, np.float32)})
    assert result.step == 1
    chex.assert_trees_all_equal(result.state.batch_stats, source.state.batch_stats)


def test_init_from_refuses_weights_of_another_shape(tmp_path):
    _run(tmp_path / "source", _counting_step([]), epochs=1, epoch_steps=1)
    other = _state({"w": jnp.zeros(4), "b": jnp.zeros(1)})
    with pytest.raises(CheckpointError, match=r"do not fit this network:\n  b: missing in .*\n  w: shape \(3,\) in"):
        _run(tmp_path / "target", _counting_step([]), epochs=1, epoch_steps=1, state=other,
             init_from=str(tmp_path / "source"))
    with pytest.raises(FileNotFoundError, match="--init-from must name the workdir of an earlier run"):
        _run(tmp_path / "other", _counting_step([]), init_from=str(tmp_path / "nowhere"))


def test_the_best_epoch_by_dev_eer_is_kept_beside_the_newest(tmp_path):
    planted = {0: 30.0, 1: 10.0, 2: 20.0, 3: 25.0}  # the minimum at epoch 1, which ends at step 4
    hooks = driver.Hooks(on_epoch_end=lambda epoch, state: {"dev_eer_percent": planted[epoch]})
    _run(tmp_path, _counting_step([]), epochs=4, epoch_steps=2, keep_checkpoints=2, keep_best=1, hooks=hooks)
    best = RunCheckpoints(tmp_path, 1, lowest="dev_eer_percent")
    newest = RunCheckpoints(tmp_path, 2)
    try:
        assert best.best_step() == 4 and best.steps() == [4]
        assert newest.steps() == [6, 8]
        state, meta = best.restore(4, _state())
        chex.assert_trees_all_equal(state.params, {"w": np.full(3, 4.0, np.float32)})
        assert meta["summary"]["dev_eer_percent"] == 10.0 and meta["epoch"] == 2
    finally:
        best.close()
        newest.close()


def test_without_a_dev_value_no_best_checkpoint_is_kept(tmp_path):
    _run(tmp_path, _counting_step([]), epochs=2, epoch_steps=2, keep_best=1)
    assert not any((tmp_path / "best_checkpoints").glob("[0-9]*"))


def test_a_tie_in_dev_eer_goes_to_the_later_epoch(tmp_path):
    planted = {0: 30.0, 1: 10.0, 2: 10.0, 3: 25.0}
    hooks = driver.Hooks(on_epoch_end=lambda epoch, state: {"dev_eer_percent": planted[epoch]})
    _run(tmp_path, _counting_step([]), epochs=4, epoch_steps=2, keep_best=1, hooks=hooks)
    best = RunCheckpoints(tmp_path, 1, lowest="dev_eer_percent")
    try:
        assert best.steps() == [6]
    finally:
        best.close()
