"""The DARTS relaxation: op weights and β normalised within each node, in JAX and in NumPy."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.relaxations import edge_weights, softmax_np, softmax_weights

BOUNDS = (0, 2, 5, 9, 14)  # the four nodes of a PC-DARTS cell


def _add(betas, index, value):
    if isinstance(betas, np.ndarray):
        out = betas.copy()
        out[index] += value
        return out
    return betas.at[index].add(value)


@pytest.mark.parametrize("as_array", [jnp.asarray, np.asarray], ids=["jax", "numpy"])
def test_edge_weights_normalise_within_each_node(as_array):
    betas = as_array(np.random.default_rng(0).normal(size=14) * 2)
    weights = np.asarray(edge_weights(betas, BOUNDS))
    for start, stop in zip(BOUNDS, BOUNDS[1:]):
        segment = np.exp(np.asarray(betas[start:stop], np.float64))
        np.testing.assert_allclose(weights[start:stop], segment / segment.sum(), rtol=1e-5)
        np.testing.assert_allclose(weights[start:stop].sum(), 1.0, rtol=1e-6)
    # Shifting one node's β leaves every weight unchanged; shifting part of a node changes only that node.
    shifted = _add(betas, slice(5, 9), 3.0)
    np.testing.assert_allclose(edge_weights(shifted, BOUNDS), weights, rtol=1e-5)
    changed = np.asarray(edge_weights(_add(betas, 2, 1.0), BOUNDS))
    assert not np.allclose(changed[2:5], weights[2:5])
    np.testing.assert_allclose(np.delete(changed, [2, 3, 4]), np.delete(weights, [2, 3, 4]), rtol=1e-6)
    if isinstance(betas, np.ndarray):
        assert edge_weights(betas, BOUNDS).dtype == np.float64


def test_softmax_weights_are_softmax_at_temperature_and_numpy_agrees():
    logits = np.random.default_rng(1).normal(size=(14, 8))
    for temperature in (1.0, 0.5):
        expected = np.exp(logits / temperature) / np.exp(logits / temperature).sum(-1, keepdims=True)
        np.testing.assert_allclose(softmax_weights(jax.random.key(0), jnp.asarray(logits, jnp.float32), temperature),
                                   expected, rtol=1e-5)
    np.testing.assert_allclose(softmax_np(logits), np.exp(logits) / np.exp(logits).sum(-1, keepdims=True),
                               rtol=1e-12)
