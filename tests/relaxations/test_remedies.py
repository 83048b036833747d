"""The relaxation's collapse remedies against their definitions, written out in NumPy: Fair DARTS' sigmoid
and zero-one loss, DARTS-' auxiliary skip and its schedule, and the op strengths derivation reads."""
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.relaxations import (
    auxiliary_skip,
    auxiliary_skip_weight,
    derivation_weights,
    sample_arch_weights,
    sigmoid_np,
    softmax_np,
    zero_one_loss,
)

ARCH = {"alphas_normal": np.array([[0.3, -1.2, 2.0], [0.0, 0.7, -0.4]]), "alphas_reduce": np.array([[1.1, 0.2, -3.0]]),
        "betas_normal": np.array([0.5, -0.5])}


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_the_sigmoid_relaxation_weighs_each_op_on_its_own():
    logits = ARCH["alphas_normal"]
    weights = np.asarray(sample_arch_weights(jax.random.key(0), jnp.asarray(logits, jnp.float32), 2.0, "sigmoid"))
    np.testing.assert_allclose(weights, _sigmoid(logits / 2.0), rtol=1e-6)
    assert not np.allclose(weights.sum(axis=-1), 1.0)  # no competition for one unit of weight
    np.testing.assert_allclose(sigmoid_np(logits), _sigmoid(logits), rtol=1e-12)
    assert derivation_weights("sigmoid") is sigmoid_np
    assert derivation_weights("softmax") is softmax_np and derivation_weights("gumbel_st") is softmax_np


def test_the_zero_one_loss_and_its_gradient_follow_fair_darts_definition():
    with jax.enable_x64(True):
        value, grads = jax.value_and_grad(zero_one_loss)({k: jnp.asarray(v, jnp.float64) for k, v in ARCH.items()})
    ops = np.concatenate([ARCH["alphas_normal"].ravel(), ARCH["alphas_reduce"].ravel()])  # β (1-D) is not an op
    np.testing.assert_allclose(float(value), -np.mean((_sigmoid(ops) - 0.5) ** 2), rtol=1e-12)
    for name in ("alphas_normal", "alphas_reduce"):
        s = _sigmoid(ARCH[name])
        np.testing.assert_allclose(np.asarray(grads[name]), -2 * (s - 0.5) * s * (1 - s) / ops.size, rtol=1e-10)
    # Descent on the loss moves every σ(α) away from 0.5: the gradient's sign is opposite to α's (0 at 0).
    np.testing.assert_array_equal(np.sign(np.asarray(grads["alphas_normal"])), -np.sign(ARCH["alphas_normal"]))
    np.testing.assert_array_equal(np.asarray(grads["betas_normal"]), 0.0)


def test_the_auxiliary_skip_adds_its_weight_to_the_skip_column_only():
    weights = np.random.default_rng(0).random((3, 14, 5)).astype(np.float32)  # per example (B, E, K)
    added = np.asarray(auxiliary_skip(jnp.asarray(weights), 2, 0.4))
    expected = weights.copy()
    expected[..., 2] += 0.4
    np.testing.assert_allclose(added, expected, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(auxiliary_skip(jnp.asarray(weights[0]), 4, 1.0)) - weights[0],
                               np.tile([0, 0, 0, 0, 1.0], (14, 1)), atol=1e-7)


def test_the_auxiliary_skip_weight_falls_linearly_to_zero_at_the_last_epoch():
    assert [auxiliary_skip_weight(epoch, 5, 1.0) for epoch in range(5)] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert auxiliary_skip_weight(0, 1, 0.7) == 0.7 and auxiliary_skip_weight(3, 5, 0.0) == 0.0
