"""darts_jax.engine.packing, and packed states through parallel.pmap and the run driver: a step on a packed
state computes what it computes on the plain one, with one argument leaf per dtype.

"The same" is up to float32 rounding: XLA may fuse the packed program differently. Under the suite's
reduced optimisation the toy steps below agree bit for bit; fully optimised, one value in four differed
in its last bit (relative 6e-8) after three steps. A misplaced leaf or a lost update differs by far more.
"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax.engine import packing, parallel
from darts_jax.engine.checkpoint import load_weights
from darts_jax.engine.config import LoopConfig
from darts_jax.engine.state import TrainState
from tests.engine.test_driver import _run as run_stand_in_task


def _assert_same_state(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        assert g.dtype == w.dtype and g.shape == w.shape
        if np.issubdtype(g.dtype, np.floating):
            np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(g, w)


def _state(empty=True):
    """A state with a leaf of every kind; `empty` adds a zero-size one (which orbax cannot checkpoint)."""
    rng = np.random.default_rng(0)
    params = {"conv": {"kernel": rng.standard_normal((3, 3, 2, 4)).astype(np.float32)},
              "bias": rng.standard_normal(4).astype(np.float32)}
    if empty:
        params["empty"] = np.zeros((0, 5), np.float32)
    tx = optax.sgd(0.1, momentum=0.9)
    return TrainState(step=np.array(7, np.int32), params=params, batch_stats={"mean": np.ones(4, np.float32)},
                      opt=jax.device_get(tx.init(params)), key=np.array([1, 2], np.uint32)), tx


def test_host_pack_holds_each_dtype_in_one_buffer_and_unpacks_to_the_same_tree():
    state, _ = _state()
    packed = packing.pack(state, np)
    leaves = jax.tree.leaves(state)
    assert [b.dtype for b in packed.buffers] == [np.dtype(np.int32), np.dtype(np.float32), np.dtype(np.uint32)]
    for buffer in packed.buffers:
        assert buffer.size == sum(leaf.size for leaf in leaves if leaf.dtype == buffer.dtype)
    back = packing.unpack(packed)
    assert jax.tree.structure(back) == jax.tree.structure(state)
    for got, want in zip(jax.tree.leaves(back), leaves):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def test_a_tree_of_another_layout_is_refused():
    state, _ = _state()
    layout = packing.layout_of(state)
    with pytest.raises(ValueError, match="layout it was given .* leaves of int32, float32, uint32"):
        packing.pack_as(layout, state.replace(step=np.float32(7)), np)
    with pytest.raises(ValueError, match="layout it was given"):
        packing.pack_as(layout, state.replace(batch_stats={"mean": np.ones(5, np.float32)}), np)


def _sgd_step(state, batch_x, lr):
    """A step with every kind of leaf changing: weights, optimiser state, statistics, counter."""
    def loss_fn(params):
        y = jnp.tanh(batch_x @ params["conv"]["kernel"].reshape(18, 4) + params["bias"])
        return jnp.mean(y ** 2) + sum(jnp.sum(p) for p in params.get("empty", ()))

    _, tx = _state()
    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt = tx.update(grads, state.opt, state.params)
    new = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt=opt,
                        batch_stats={"mean": 0.9 * state.batch_stats["mean"] + lr * jnp.mean(batch_x)})
    return new, {"loss": loss}


def test_a_pmapped_step_on_a_packed_state_gives_the_plain_steps_state():
    devices = parallel.local_devices(1)
    step = parallel.pmap(_sgd_step, devices, (0, 0, None))
    state, _ = _state()
    batch = np.random.default_rng(1).standard_normal((1, 8, 18)).astype(np.float32)
    plain, packed = parallel.replicate(state, devices), parallel.replicate(state, devices, packed=True)
    assert len(jax.tree.leaves(packed)) == 3
    for _ in range(3):
        plain, plain_metrics = step(plain, batch, 0.05)
        old = packed
        packed, packed_metrics = step(packed, batch, 0.05)
        assert all(buffer.is_deleted() for buffer in old.buffers)  # the packed state is donated too
        np.testing.assert_allclose(packed_metrics["loss"], plain_metrics["loss"], rtol=1e-6)
    want, got = parallel.unreplicate(plain), parallel.unreplicate(packed)
    assert int(got.step) == 10
    _assert_same_state(got, want)


def test_a_step_that_changes_its_states_layout_is_refused_when_traced():
    devices = parallel.local_devices(1)
    widen = parallel.pmap(lambda state, x: (state.replace(step=state.step * 1.5), x), devices, (0, 0))
    state, _ = _state()
    with pytest.raises(ValueError, match="layout it was given"):
        widen(parallel.replicate(state, devices, packed=True), np.zeros((1, 2), np.float32))


def test_runs_pack_their_state_off_cpu_unless_told_and_the_setting_is_checked():
    cpu = parallel.local_devices(1)
    assert parallel.packs_state(cpu, None) is False
    assert parallel.packs_state(cpu, True) is True and parallel.packs_state(cpu, False) is False
    with pytest.raises(ValueError, match=r"packed_state \(--packed-state\): 'yes' must be true, false or null"):
        LoopConfig(packed_state="yes")


def _sgd_run(workdir, packed_state, epochs, seen):
    step = parallel.pmap(_sgd_step, parallel.local_devices(1), (0, 0, None))
    batch = np.random.default_rng(1).standard_normal((1, 8, 18)).astype(np.float32)

    def step_fn(device_state, epoch, iterators):
        seen.add(type(device_state).__name__)
        return step(device_state, batch, 0.05)

    state = _state(empty=False)[0].replace(step=np.array(0, np.int32))
    return run_stand_in_task(workdir, step_fn, epochs=epochs, epoch_steps=2, state=state, packed_state=packed_state)


def test_a_packed_run_ends_where_a_plain_one_does_and_either_resumes_the_others_checkpoint(tmp_path):
    seen_plain, seen_packed = set(), set()
    plain = _sgd_run(tmp_path / "plain", False, 2, seen_plain)
    _sgd_run(tmp_path / "packed", True, 1, seen_packed)
    packed = _sgd_run(tmp_path / "packed", None, 2, seen_plain)  # resumed with the state as leaves
    assert seen_packed == {"Packed"} and seen_plain == {"TrainState"}
    assert plain.step == packed.step == 4
    _assert_same_state(packed.state, plain.state)
    _, saved = load_weights(tmp_path / "packed")  # the checkpoint holds the tree, not the buffers
    np.testing.assert_array_equal(saved["params"]["bias"], packed.state.params["bias"])
