"""Checkpoints of search runs: exact resumption after SIGKILL, clean stops on SIGTERM/SIGINT, damaged and
mismatched checkpoints, non-finite values, and resumption on another device count (issue items 2-7).

Every run shares one tiny configuration and one uninterrupted reference run; runs in this process share
compiled step functions, and the subprocesses share a persistent compilation cache.
"""
import concurrent.futures
import contextlib
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from darts_jax.data.loader import search_loaders
from darts_jax.engine import config as config_lib
from darts_jax.engine import parallel
from darts_jax.engine.checkpoint import CheckpointError, RunCheckpoints
from darts_jax.spaces.pcdarts2d import SPACE
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spoofing import pipeline
from darts_jax.tasks import common
from darts_jax.tasks import search as search_task
from darts_jax.tasks.search import SearchConfig, init_search_state
from tests.step_traces import compile_search_steps_once

STEPS_PER_EPOCH = 5
CONFIG = config_lib.with_fields(
    SearchConfig(model=ModelConfig(layers=1, init_channels=4, num_samples=2048, mask=True,
                                   primitives=("max_pool_3x3", "skip_connect"))),
    batch_size=4, epochs=3, warmup_epochs=1, steps_per_epoch=STEPS_PER_EPOCH, seed=5,
    log_every=1, checkpoint_every=1, keep_checkpoints=3, hessian_every=0)
TOTAL_STEPS = CONFIG.loop.epochs * STEPS_PER_EPOCH

# The subprocess runs what `darts-jax search` runs, less the dev scoring, with this file's configuration
# (the CLI has no --primitives flag, and two primitives compile several times faster than eight).
DRIVER = """
import json, sys
from darts_jax.engine import config
from darts_jax.spaces.pcdarts2d import ModelConfig
from darts_jax.spoofing import pipeline
from darts_jax.tasks.search import SearchConfig
search_config = config.from_dict(SearchConfig, json.loads(sys.argv[1]), field_types={"model": ModelConfig})
pipeline.run_search(search_config, sys.argv[2], sys.argv[3], monitor_dev=False, workers=2)
"""


@pytest.fixture(scope="module", autouse=True)
def shared_step_functions():
    """Compiles the step functions once per device count and architecture for all runs in this module."""
    with pytest.MonkeyPatch.context() as patch:
        compile_search_steps_once(patch)
        yield


def make_loaders(data_dir, config=CONFIG):
    """The loaders `pipeline.run_search` makes for one host."""
    return search_loaders(data_dir, config.optim.batch_size, seed=config.loop.seed,
                          num_samples=config.model.num_samples, sample_rate=config.model.sample_rate, num_workers=2)


class Tampered:
    """A loader whose `at`-th batch of this run passes through `action` (which returns the batch to use)."""

    def __init__(self, loader, at: int, action):
        self.loader, self.at, self.action = loader, at, action

    @property
    def steps_per_epoch(self):
        return self.loader.steps_per_epoch

    def state(self):
        return self.loader.state()

    def restore(self, state):
        self.loader.restore(state)

    def __iter__(self):
        for count, batch in enumerate(self.loader, 1):
            yield self.action(batch) if count == self.at else batch


def send_sigint(batch):
    os.kill(os.getpid(), signal.SIGINT)
    return batch


def with_nan(batch):
    wave_BxS = batch.wave_BxS.copy()
    wave_BxS[1, 100] = np.nan
    return batch._replace(wave_BxS=wave_BxS)


def search(data_dir, workdir, config=CONFIG, *, weights_action=None, arch_action=None, at=None, **options):
    weight_loader, arch_loader = make_loaders(data_dir, config)
    if weights_action:
        weight_loader = Tampered(weight_loader, at, weights_action)
    if arch_action:
        arch_loader = Tampered(arch_loader, at, arch_action)
    return search_task.search(SPACE, config, weight_loader, arch_loader, workdir, **{"quiet": True, **options})


def search_with_log(*args, **kwargs):
    """(RunResult, what the run said) of `search` with its messages shown."""
    said = io.StringIO()
    with contextlib.redirect_stderr(said):
        result = search(*args, quiet=False, **kwargs)
    return result, said.getvalue()


def latest_checkpoint(workdir, config=CONFIG):
    checkpoints = RunCheckpoints(workdir, config.loop.keep_checkpoints)
    try:
        return checkpoints.restore_latest(jax.device_get(init_search_state(SPACE, config)))
    finally:
        checkpoints.close()


def checkpoint_steps(workdir):
    return sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


def metrics_by_step(workdir) -> dict:
    """step -> the metrics logged for it; a step run twice (after a resume) must log the same values."""
    logged = {}
    for line in (workdir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert logged.setdefault(record["step"], record) == record, f"step {record['step']} logged differently"
    return logged


def copy_run(source, destination):
    shutil.copytree(source, destination)
    return destination


@pytest.fixture(scope="module")
def reference(tiny_corpus, tmp_path_factory):  # noqa: F811
    """An uninterrupted run, made as the subprocesses make theirs."""
    workdir = tmp_path_factory.mktemp("reference")
    result = pipeline.run_search(CONFIG, tiny_corpus, workdir, monitor_dev=False, quiet=True, workers=2)
    assert result.step == TOTAL_STEPS and not result.interrupted
    return workdir, result


# ------------------------------------------------------------------------- items 2 and 3: exact resumption

def wait_for_metrics_line(workdir, process, after_lines: int, min_step: int, stderr_path) -> None:
    """Until metrics.jsonl holds, past its first `after_lines` lines, a complete line for a step >= min_step."""
    path = workdir / "metrics.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"run ended (rc {process.returncode}) before step {min_step}:\n"
                                 + stderr_path.read_text()[-3000:])
        lines = path.read_text().split("\n")[:-1] if path.exists() else []
        if any(json.loads(line)["step"] >= min_step for line in lines[after_lines:]):
            return
        time.sleep(0.02)
    process.kill()
    raise AssertionError(f"no step {min_step} within 300 s")


def kill_stop_and_finish(data_dir, tmp_path):
    """A search in subprocesses: killed with SIGKILL, resumed and stopped with SIGTERM, resumed to the end."""
    workdir = tmp_path / "run"
    # On one device, as the in-process reference runs (tests/conftest.py says why).
    env = {**os.environ, "XLA_FLAGS": os.environ["XLA_FLAGS"].replace("device_count=2", "device_count=1"),
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}
    command = [sys.executable, "-c", DRIVER, json.dumps(config_lib.to_dict(CONFIG)), str(data_dir), str(workdir)]

    def start(name):
        stderr_path = tmp_path / f"{name}.stderr"
        with open(stderr_path, "w") as stderr:
            return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr), stderr_path

    # Killed without warning in the first epoch that moves α/β. Orbax finishes a save before it starts
    # the next, so the checkpoint of step 6 is complete once step 8 is logged (after the save of step 7).
    killed, killed_log = start("killed")
    wait_for_metrics_line(workdir, killed, 0, STEPS_PER_EPOCH + 3, killed_log)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(60) == -signal.SIGKILL
    killed_at = max(metrics_by_step(workdir))
    assert STEPS_PER_EPOCH + 3 <= killed_at < TOTAL_STEPS

    # Resumed, then stopped with SIGTERM once it has taken a step.
    stopped, stopped_log = start("stopped")
    lines_before = len((workdir / "metrics.jsonl").read_text().splitlines())
    wait_for_metrics_line(workdir, stopped, lines_before, 0, stopped_log)
    stopped.send_signal(signal.SIGTERM)
    assert stopped.wait(120) == 0, stopped_log.read_text()[-3000:]
    said = stopped_log.read_text()
    resumed_from = int(said.split("from the checkpoint at step ")[1].split()[0])
    assert STEPS_PER_EPOCH < resumed_from <= killed_at
    stop_line = next(line for line in said.splitlines() if "SIGTERM: stopped after step" in line)
    assert "Run the same command again to resume" in stop_line
    stopped_at = int(stop_line.split("stopped after step ")[1].split(",")[0])
    assert resumed_from < stopped_at < TOTAL_STEPS
    assert checkpoint_steps(workdir)[-1] == stopped_at

    finished, finished_log = start("finished")
    assert finished.wait(300) == 0, finished_log.read_text()[-3000:]
    assert f"from the checkpoint at step {stopped_at} " in finished_log.read_text()
    return workdir


@pytest.fixture(scope="module")
def interrupted_in_subprocesses(tiny_corpus, tmp_path_factory):  # noqa: F811
    """The workdir of `kill_stop_and_finish`, run on a thread: the future of it."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        yield pool.submit(kill_stop_and_finish, tiny_corpus, tmp_path_factory.mktemp("subprocesses"))


@pytest.fixture(scope="module", autouse=True)
def subprocesses_first(request):
    """Starts the subprocess runs before anything else, so that they overlap this module's other runs."""
    if any("interrupted_in_subprocesses" in item.fixturenames for item in request.session.items):
        request.getfixturevalue("interrupted_in_subprocesses")


@pytest.fixture(scope="module")
def stopped_by_sigint(tiny_corpus, tmp_path_factory):  # noqa: F811
    """A run sent SIGINT while it loads the batch of step 7 (two steps into epoch 1, after warm-up)."""
    workdir = tmp_path_factory.mktemp("sigint")
    handler = signal.getsignal(signal.SIGINT)
    result, said = search_with_log(tiny_corpus, workdir, weights_action=send_sigint, at=STEPS_PER_EPOCH + 2)
    assert signal.getsignal(signal.SIGINT) is handler
    return workdir, result, said


def test_sigint_finishes_the_step_in_flight_saves_and_says_how_to_resume(tiny_corpus, stopped_by_sigint):  # noqa: F811
    workdir, result, said = stopped_by_sigint
    stopped_at = STEPS_PER_EPOCH + 2
    assert result.interrupted and result.step == stopped_at
    assert "SIGINT: stopping after the step in flight" in said and "Ctrl-C again to abort" in said
    assert f"SIGINT: stopped after step {stopped_at}, checkpoint saved. Run the same command again" in said
    # A stopped search has only a provisional genotype, said to be one.
    assert not (workdir / "genotype.json").exists()
    assert json.loads((workdir / "genotype.provisional.json").read_text()) == result.genotype.to_dict()
    assert f"provisional genotype after step {stopped_at} of {TOTAL_STEPS}" in said
    assert checkpoint_steps(workdir)[-1] == stopped_at
    step, state, _, cursors = latest_checkpoint(workdir)
    assert step == int(state.step) == stopped_at
    assert_trees_equal(state, result.state)
    loaders = dict(zip(("weights", "arch"), make_loaders(tiny_corpus)))
    for name, used in (("weights", stopped_at), ("arch", stopped_at - STEPS_PER_EPOCH)):
        batches = iter(loaders[name])
        for _ in range(used):
            next(batches)
        assert cursors[name] == loaders[name].state()


def test_run_resumed_mid_epoch_after_sigint_matches_the_uninterrupted_run(tiny_corpus, reference,  # noqa: F811
                                                                           stopped_by_sigint, tmp_path):
    workdir = copy_run(stopped_by_sigint[0], tmp_path / "run")
    result, said = search_with_log(tiny_corpus, workdir)
    assert f"from the checkpoint at step {STEPS_PER_EPOCH + 2} " in said
    assert result.step == TOTAL_STEPS and not result.interrupted
    assert_trees_equal(result.state, reference[1].state)
    assert result.genotype == reference[1].genotype
    assert (workdir / "genotype.json").read_text() == (reference[0] / "genotype.json").read_text()
    assert not (workdir / "genotype.provisional.json").exists()
    # The logs read as the uninterrupted run's: the epoch summaries (averaged over the steps run in each
    # epoch, across the resume) and one genotype record per epoch start.
    for stream in ("epochs", "genotypes"):
        assert (workdir / f"{stream}.jsonl").read_text() == (reference[0] / f"{stream}.jsonl").read_text(), stream
    reference_metrics = metrics_by_step(reference[0])
    assert all(record == reference_metrics[step] for step, record in metrics_by_step(workdir).items())


# ------------------------------------------------------------------------------------- item 4: damage

def truncate_state_data(step_dir):
    data_files = [p for p in (step_dir / "state").rglob("*") if p.is_file() and p.parent.name == "d"]
    assert data_files
    for path in data_files:
        path.write_bytes(path.read_bytes()[:16])


DAMAGE = {
    "truncated array data": truncate_state_data,
    "missing loader cursors": lambda step_dir: (step_dir / "loaders" / "metadata").unlink(),
    "state never written": lambda step_dir: shutil.rmtree(step_dir / "state"),
}


# Orbax's reader threads report the failed read once more after it has been handled.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_latest_checkpoint_is_skipped_for_the_previous_one(tiny_corpus, reference, tmp_path,  # noqa: F811
                                                                     damage):
    workdir = copy_run(reference[0], tmp_path / "run")
    DAMAGE[damage](workdir / "checkpoints" / str(TOTAL_STEPS))
    with pytest.warns(UserWarning, match=f"checkpoints/{TOTAL_STEPS} is damaged or incomplete"):
        result, said = search_with_log(tiny_corpus, workdir)
    # The previous checkpoint was used, the last step run again, and its new checkpoint written.
    assert f"from the checkpoint at step {TOTAL_STEPS - 1} " in said
    assert result.step == TOTAL_STEPS
    assert_trees_equal(result.state, reference[1].state)
    assert latest_checkpoint(workdir)[0] == TOTAL_STEPS
    assert [p.name for p in (workdir / "damaged_checkpoints").glob("*/*")] == [str(TOTAL_STEPS)]


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_usable_checkpoint_is_an_error_not_a_restart(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = copy_run(reference[0], tmp_path / "run")
    steps = checkpoint_steps(workdir)
    for step in steps:
        truncate_state_data(workdir / "checkpoints" / str(step))
    with pytest.warns(UserWarning), pytest.raises(CheckpointError) as raised:
        search(tiny_corpus, workdir)
    message = str(raised.value)
    assert f"no usable checkpoint in {workdir / 'checkpoints'}" in message and "--restart" in message
    assert all(f"step {step}:" in message for step in steps)
    assert checkpoint_steps(workdir) == steps


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # orbax's closed event loop
def test_restart_moves_the_old_run_aside_and_starts_its_logs_afresh(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = copy_run(reference[0], tmp_path / "run")
    before = sorted(p.name for p in workdir.iterdir())
    result, said = search_with_log(tiny_corpus, workdir, restart=True)
    aside = next((workdir / "previous-runs").iterdir())
    assert f"--restart: the previous run (3 checkpoint(s), steps {list(range(TOTAL_STEPS - 2, TOTAL_STEPS + 1))}, " \
           f"and its logs) moved to {aside}" in said
    assert "resuming" not in said
    assert sorted(p.name for p in aside.iterdir()) == before
    assert_trees_equal(result.state, reference[1].state)
    # One record per step, as in the reference: nothing appended to the old run's logs.
    assert (workdir / "metrics.jsonl").read_text() == (reference[0] / "metrics.jsonl").read_text()


def test_resume_refuses_changed_settings_naming_them(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = copy_run(reference[0], tmp_path / "run")
    changed = config_lib.with_fields(CONFIG, lr=0.5, warmup_epochs=2)
    config_before = (workdir / "config.json").read_text()
    with pytest.raises(CheckpointError, match="keeps the settings it started with") as raised:
        search(tiny_corpus, workdir, changed)
    message = str(raised.value)
    assert "optim.lr (--lr): the run has 0.01, this command gives 0.5" in message
    assert "warmup_epochs (--warmup-epochs): the run has 1, this command gives 2" in message
    assert (workdir / "config.json").read_text() == config_before
    assert checkpoint_steps(workdir) == checkpoint_steps(reference[0])


# ----------------------------------------------------------------------------------- item 5: mismatch

def test_a_different_architecture_is_refused_with_the_differing_fields(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = copy_run(reference[0], tmp_path / "run")
    model = dataclasses.replace(CONFIG.model, layers=2, init_channels=6, frontend="lfb", partial_k=3,
                                primitives=("max_pool_3x3", "avg_pool_3x3"))
    with pytest.raises(CheckpointError, match="different architecture") as raised:
        search(tiny_corpus, workdir, dataclasses.replace(CONFIG, model=model))
    differing = [line.split(":")[0].strip() for line in str(raised.value).splitlines()[1:-1]]
    assert differing == ["frontend", "layers", "init_channels", "partial_k", "primitives"]
    assert checkpoint_steps(workdir) == checkpoint_steps(reference[0])


def test_run_length_and_logging_may_change_on_resume(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = copy_run(reference[0], tmp_path / "run")
    longer = config_lib.with_fields(CONFIG, epochs=CONFIG.loop.epochs + 1, log_every=2, checkpoint_every=100)
    result = search(tiny_corpus, workdir, longer)
    assert result.step == TOTAL_STEPS + STEPS_PER_EPOCH
    assert checkpoint_steps(workdir)[-1] == TOTAL_STEPS + STEPS_PER_EPOCH
    new_steps = sorted(step for step in metrics_by_step(workdir) if step > TOTAL_STEPS)
    assert new_steps == [TOTAL_STEPS + 1, TOTAL_STEPS + 3, TOTAL_STEPS + 5]
    assert common.load_run_config(SearchConfig, workdir / "config.json") == longer


# ------------------------------------------------------------------------------ item 6: non-finite values

@pytest.mark.parametrize("loader,quantity", [("weights", "loss"), ("arch", "arch_loss")])
def test_a_nan_stops_the_run_naming_step_and_quantity(tiny_corpus, stopped_by_sigint, tmp_path, loader,  # noqa: F811
                                                      quantity):
    workdir = copy_run(stopped_by_sigint[0], tmp_path / "run")
    good_step = STEPS_PER_EPOCH + 2
    with pytest.raises(FloatingPointError, match=f"step {good_step + 1}: non-finite (.*, )?{quantity} = nan") as raised:
        search(tiny_corpus, workdir, **{f"{loader}_action": with_nan, "at": 1})
    assert f"last good checkpoint (step {good_step}) is intact" in str(raised.value)
    assert checkpoint_steps(workdir)[-1] == good_step
    step, state, _, _ = latest_checkpoint(workdir)
    assert step == good_step
    assert_trees_equal(state, stopped_by_sigint[1].state)


# ---------------------------------------------------------------------------------------- item 7: topology

def assert_close_to_reference(workdir, reference, resumed_from):
    """A run on another device count sums in another order: equal up to float32 rounding."""
    expected = metrics_by_step(reference[0])
    for step, record in metrics_by_step(workdir).items():
        if step > resumed_from:
            for name in ("loss", "arch_loss", "accuracy"):
                if name in record:
                    np.testing.assert_allclose(record[name], expected[step][name], rtol=1e-5,
                                               err_msg=f"step {step} {name}")


def test_a_two_device_checkpoint_resumes_on_one_device(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = tmp_path / "run"
    stopped = search(tiny_corpus, workdir, weights_action=send_sigint, at=STEPS_PER_EPOCH + 2,
                     devices=parallel.local_devices(2))
    assert stopped.interrupted and stopped.step == STEPS_PER_EPOCH + 2
    result, said = search_with_log(tiny_corpus, workdir, devices=parallel.local_devices(1))
    assert f"from the checkpoint at step {STEPS_PER_EPOCH + 2} " in said
    assert result.step == TOTAL_STEPS
    assert_close_to_reference(workdir, reference, 0)


def test_a_one_device_checkpoint_resumes_on_two_devices(tiny_corpus, reference, tmp_path):  # noqa: F811
    workdir = tmp_path / "run"
    stopped = search(tiny_corpus, workdir, weights_action=send_sigint, at=STEPS_PER_EPOCH + 1,
                     devices=parallel.local_devices(1))
    assert stopped.interrupted and stopped.step == STEPS_PER_EPOCH + 1
    result, said = search_with_log(tiny_corpus, workdir, devices=parallel.local_devices(2))
    assert f"from the checkpoint at step {STEPS_PER_EPOCH + 1} " in said
    assert result.step == TOTAL_STEPS
    assert_close_to_reference(workdir, reference, 0)


# ------------------------------------------------------------- items 2 and 3, last: the subprocess runs

def test_sigkill_and_sigterm_then_resume_match_the_uninterrupted_run(interrupted_in_subprocesses, reference):
    workdir = interrupted_in_subprocesses.result()
    reference_dir, reference_result = reference
    step, state, meta, cursors = latest_checkpoint(workdir)
    assert step == TOTAL_STEPS
    assert_trees_equal(state, reference_result.state)
    assert meta["genotype"] == reference_result.genotype.to_dict()
    assert (workdir / "genotype.json").read_text() == (reference_dir / "genotype.json").read_text()
    assert cursors == latest_checkpoint(reference_dir)[3]
    # Every step, including those run twice, logged exactly the reference's metrics, once.
    reference_metrics = metrics_by_step(reference_dir)
    resumed_metrics = metrics_by_step(workdir)
    assert sorted(resumed_metrics) == list(range(1, TOTAL_STEPS + 1))
    for stream in ("metrics", "genotypes"):
        assert (workdir / f"{stream}.jsonl").read_text() == (reference_dir / f"{stream}.jsonl").read_text(), stream
    assert all(resumed_metrics[s] == reference_metrics[s] for s in resumed_metrics)
