"""The adaptation step and task: source-free signature, frozen teacher, loss composition, no recompiles."""
import inspect
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.engine.state import TrainState, first_step, run_key_data
from darts_jax.tasks.adapt import losses
from darts_jax.tasks.adapt.config import METHODS, AdaptLoss, config_for
from darts_jax.tasks.adapt.step import Backbone, adapt_step, prototypes_from_outputs, sgd
from darts_jax.tasks.adapt.task import adapt
from darts_jax.tasks.arrays import ArrayLoader

TRACES = {"forward": 0}


def _toy_forward(variables, x_BxL, train, key):
    """features = tanh(x W), logits = features V; 'batch_stats' counts training forwards."""
    TRACES["forward"] += 1
    features = jnp.tanh(x_BxL @ variables["params"]["body"]["w"])
    logits = features @ variables["params"]["classifier"]["v"]
    stats = {"seen": variables["batch_stats"]["seen"] + (1.0 if train else 0.0)}
    return (logits, features), stats


TOY = Backbone(forward=_toy_forward, head_keys=("classifier",))


def _toy_variables(seed):
    rng = np.random.default_rng(seed)
    return {"params": {"body": {"w": jnp.asarray(rng.normal(0, 0.5, (6, 4)), jnp.float32)},
                       "classifier": {"v": jnp.asarray(rng.normal(0, 1.0, (4, 2)), jnp.float32)}},
            "batch_stats": {"seen": jnp.zeros(())}}


def _data(seed, n=16):
    rng = np.random.default_rng(seed)
    return {"inputs": rng.normal(size=(n, 6)).astype(np.float32), "label": rng.integers(0, 2, n).astype(np.int32)}


def _state(variables, momentum=0.1):
    return TrainState(step=first_step(), params=variables["params"], batch_stats=variables["batch_stats"],
                      opt=sgd(momentum).init(variables["params"]), key=run_key_data(0))


def _prototypes(teacher, data, prototype="scalar"):
    (logits, features), _ = _toy_forward(teacher, jnp.asarray(data["inputs"]), False, None)
    return prototypes_from_outputs(logits, data["label"], features, prototype)


def test_adapt_takes_no_source_data():
    params = inspect.signature(adapt).parameters
    assert list(params) == ["backbone", "teacher_variables", "target_train", "target_val", "config", "workdir",
                            "devices", "restart", "quiet"]
    assert not any("source" in name for name in params)


@pytest.fixture(scope="module")
def step():
    return jax.jit(lambda state, batch, lr, weights, teacher, protos: adapt_step(
        state, batch, lr, weights, teacher, protos, backbone=TOY, loss=AdaptLoss(cutmix_prob=0.0), momentum=0.1,
        box_axes=1))


def test_the_total_loss_and_its_gradient_step_against_a_direct_computation(step):
    teacher, student = _toy_variables(0), _toy_variables(1)
    batch = _data(2)
    protos = _prototypes(teacher, batch)
    weights = {"ce": 1.0, "kd": 0.7, "rel": 2.0, "l2sp": 0.3}
    new_state, metrics = step(_state(student), batch, 0.05, weights, teacher, protos)

    x, y = jnp.asarray(batch["inputs"]), jnp.asarray(batch["label"])
    (t_logits, _), _ = _toy_forward(teacher, x, False, None)

    def direct(params):
        (logits, features), _ = _toy_forward({"params": params, "batch_stats": student["batch_stats"]}, x, True, None)
        return (losses.cross_entropy(logits, y) + 0.7 * losses.kd_term(logits, t_logits, y, 20.0, 0.5)
                + 2.0 * losses.rel_term(logits, y, features.mean(-1, keepdims=True), protos["means"], protos["counts"])
                + 0.3 * losses.l2sp_term(params, teacher["params"], ("classifier",), t_logits, y))

    value, grads = jax.value_and_grad(direct)(student["params"])
    assert float(metrics["loss"]) == pytest.approx(float(value), rel=1e-5)
    # First SGD step with momentum: the trace is the gradient itself.
    expected = jax.tree.map(lambda p, g: p - 0.05 * g, student["params"], grads)
    for got, want in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(expected)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6)
    assert float(new_state.batch_stats["seen"]) == 1.0  # the student's statistics train (defect 1 of §3.6)


def test_the_teacher_gets_no_gradient_and_other_weights_do_not_recompile(step):
    teacher, student = _toy_variables(0), _toy_variables(0)
    batch = _data(3)
    protos = _prototypes(teacher, batch)
    state = _state(student)
    before = TRACES["forward"]
    for method in ("ft", "kd", "tgd", "rel", "fretal"):
        state, metrics = step(state, batch, 0.05, METHODS[method].weights(), teacher, protos)
        assert np.isfinite(float(metrics["loss"]))
    assert TRACES["forward"] - before <= 3  # one trace (teacher, student, and nothing more) for all five
    np.testing.assert_array_equal(np.asarray(teacher["params"]["body"]["w"]),
                                  np.asarray(_toy_variables(0)["params"]["body"]["w"]))
    # A student equal to the teacher, with ReL alone and eval-mode cells, has zero loss and gradient
    # when the batch is the prototype data.
    rel_loss = AdaptLoss(cutmix_prob=0.0, rel_forward="eval_pass")
    rel_only = jax.jit(lambda s: adapt_step(s, batch, 0.05, {"ce": 0.0, "kd": 0.0, "rel": 1.0, "l2sp": 0.0}, teacher,
                                            protos, backbone=TOY, loss=rel_loss, momentum=0.1, box_axes=1))
    new_state, metrics = rel_only(_state(teacher))
    assert float(metrics["loss_rel"]) == 0.0 and float(metrics["grad_norm"]) == 0.0


def test_array_loader_resumes_where_it_stopped():
    data = _data(4, n=21)
    first = ArrayLoader(data, 4, seed=7)
    it = iter(first)
    seen = [next(it)["label"] for _ in range(7)]
    resumed = ArrayLoader(data, 4, seed=7)
    resumed.restore(first.state())
    resumed_it = iter(resumed)
    for _ in range(4):
        np.testing.assert_array_equal(next(resumed_it)["label"], next(it)["label"])
    # Each epoch is a seeded permutation with the last partial batch dropped: no row repeats within it.
    assert first.steps_per_epoch == 5
    epoch_rows = np.random.default_rng([7, 0]).permutation(21)[:20]
    np.testing.assert_array_equal(np.concatenate(seen[:5]), data["label"][epoch_rows])
    # A cursor saved by the previous release's adaptation loader, (epoch, batch), resumes at the same batch.
    older = ArrayLoader(data, 4, seed=7)
    older.restore({"epoch": 1, "batch": 1})  # the 7th batch: epoch 1 of 5 batches, its second
    epoch_1 = np.random.default_rng([7, 1]).permutation(21)
    np.testing.assert_array_equal(next(iter(older))["label"], data["label"][epoch_1[4:8]])


def test_adapt_run_writes_the_teachers_prototypes_and_leaves_the_teacher_alone(tmp_path):
    teacher = _toy_variables(5)
    target = _data(6, n=24)
    config = config_for("fretal", batch_size=8, box_axes=1, epochs=2)
    result = adapt(TOY, teacher, target, None, config, tmp_path / "run", quiet=True)
    saved = json.loads((tmp_path / "run" / "prototypes.json").read_text())
    expected = _prototypes(teacher, target)
    np.testing.assert_allclose(np.asarray(saved["counts"]), np.asarray(expected["counts"]))
    np.testing.assert_allclose(np.asarray(saved["means"]), np.asarray(expected["means"]), rtol=1e-5, atol=1e-6)
    assert result.step == 6
    assert not np.allclose(np.asarray(result.variables["params"]["body"]["w"]),
                           np.asarray(teacher["params"]["body"]["w"]))
    np.testing.assert_array_equal(np.asarray(teacher["params"]["body"]["w"]),
                                  np.asarray(_toy_variables(5)["params"]["body"]["w"]))
    assert json.loads((tmp_path / "run" / "config.json").read_text())["method"] == "fretal"


def test_bad_target_data_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="target_train: labels must be 0 or 1"):
        adapt(TOY, _toy_variables(0), {"inputs": np.zeros((4, 6)), "label": np.array([0, 1, 2, 1])}, None,
              config_for("ft", batch_size=2, box_axes=1), tmp_path / "bad", quiet=True)
    with pytest.raises(ValueError, match="method"):
        config_for("lwf")
