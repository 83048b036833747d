"""The fusion layers against NumPy references: PyTorch's adaptive max pooling, scaled dot attention with
LayerNorm([C, L]), the GLU, and the node output's ω-weighted sum."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.spaces.fusion.layers import FusionOp, NodeOutput, adaptive_max_pool, pool_windows, split_taps


def _torch_adaptive_max_pool_1d(x_BxDxC, length):
    """PyTorch's AdaptiveMaxPool1d, as its documentation defines the windows: start = floor(i·D/L),
    end = ceil((i + 1)·D/L)."""
    size = x_BxDxC.shape[1]
    out = np.empty((x_BxDxC.shape[0], length, x_BxDxC.shape[2]))
    for i in range(length):
        start, end = (i * size) // length, -(-((i + 1) * size) // length)
        out[:, i] = x_BxDxC[:, start:end].max(axis=1)
    return out


@pytest.mark.parametrize("size", [25, 8, 5, 100])
def test_adaptive_max_pool_matches_pytorchs_windows(size):
    rng = np.random.default_rng(size)
    x = rng.normal(size=(2, size, 3, 4, 6)).astype(np.float32)  # (B, time, h, w, C)
    expected = _torch_adaptive_max_pool_1d(x.max(axis=(2, 3)), 8)
    np.testing.assert_allclose(np.asarray(adaptive_max_pool(jnp.asarray(x), 8)), expected, rtol=0, atol=0)
    # Windows cover every position; upsampling (size < 8) repeats positions.
    covered = set()
    for a, b in pool_windows(size, 8):
        covered |= set(range(a, b))
    assert covered == set(range(size))


def test_a_vector_tap_is_repeated_along_the_length():
    vector = np.arange(6, dtype=np.float32).reshape(2, 3)
    pooled = np.asarray(adaptive_max_pool(jnp.asarray(vector), 8))
    assert pooled.shape == (2, 8, 3) and np.all(pooled == vector[:, None, :])


def test_split_taps_inverts_packing():
    parts = [np.full((2, 8, c), i, np.float32) for i, c in enumerate((3, 1, 2))]
    for got, want in zip(split_taps(np.concatenate(parts, axis=-1), (3, 1, 2)), parts):
        assert np.array_equal(got, want)


def _layer_norm_LxC(x):
    mean = x.mean(axis=(-2, -1), keepdims=True)
    var = x.var(axis=(-2, -1), keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5)


def _apply(module, *inputs):
    variables = module.init(jax.random.key(0), *inputs, train=False)
    return variables, np.asarray(module.apply(variables, *inputs, train=False))


def test_scale_dot_attention_matches_numpy():
    rng = np.random.default_rng(1)
    x, y = (rng.normal(size=(2, 8, 5)).astype(np.float32) for _ in range(2))
    _, out = _apply(FusionOp("ScaleDotAttn", 0.2), x, y)
    scores = np.einsum("blc,bmc->blm", x, y) / math.sqrt(5)
    attention = np.exp(scores - scores.max(-1, keepdims=True))
    attention /= attention.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, _layer_norm_LxC(attention @ y), rtol=1e-4, atol=1e-5)


def test_linear_glu_and_concat_fc_read_both_inputs():
    rng = np.random.default_rng(2)
    x, y = (rng.normal(size=(2, 8, 4)).astype(np.float32) for _ in range(2))
    variables, out = _apply(FusionOp("LinearGLU", 0.2), x, y)
    dense = variables["params"]["ConvBnAct_0"]["Dense_0"]
    pre = np.concatenate([x, y], -1) @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])
    pre = pre / np.sqrt(1 + 1e-5)  # eval-mode BatchNorm at its initial statistics (mean 0, var 1)
    np.testing.assert_allclose(out, pre[..., :4] / (1 + np.exp(-pre[..., 4:])), rtol=1e-4, atol=1e-5)
    _, concat = _apply(FusionOp("ConcatFC", 0.2), x, y)
    _, concat_other_y = _apply(FusionOp("ConcatFC", 0.2), x, -y)
    assert concat.shape == (2, 8, 4) and not np.allclose(concat, concat_other_y)
    _, summed = _apply(FusionOp("Sum", 0.2), x, y)
    np.testing.assert_allclose(summed, x + y)


def test_node_output_weights_inner_steps_by_omega():
    rng = np.random.default_rng(3)
    x, s0, s1 = (rng.normal(size=(2, 8, 4)).astype(np.float32) for _ in range(3))
    module = NodeOutput("weighted_sum", 0.2)
    variables = module.init(jax.random.key(4), x, [s0, s1], train=False)
    omega = np.asarray(variables["params"]["omega"])
    assert omega.shape == (2,) and np.all((0 <= omega) & (omega < 1))
    dense = variables["params"]["ConvBnAct_0"]["Dense_0"]
    combined = omega[0] * s0 + omega[1] * s1
    conv = np.maximum((combined @ np.asarray(dense["kernel"]) + np.asarray(dense["bias"])) / np.sqrt(1 + 1e-5), 0)
    out = np.asarray(module.apply(variables, x, [s0, s1], train=False))
    np.testing.assert_allclose(out, _layer_norm_LxC(conv + x), rtol=1e-4, atol=1e-5)
