"""Every 1-D primitive's output length and values on a small known input, against NumPy."""
import jax
import numpy as np
import pytest

from darts_jax.spaces.raw.config import PRIMITIVES
from darts_jax.spaces.raw.operations import DilConv, Op, Preprocess, StdConv, max_pool

T, C = 7, 3
EPS = 1e-5


def _x():
    return np.random.default_rng(0).standard_normal((2, T, C)).astype(np.float32)


def _lrelu(x):
    return np.where(x > 0, x, 0.3 * x)


def _bn_eval(y):
    """BatchNorm with its initial running statistics (mean 0, var 1) and scale 1, bias 0."""
    return y / np.sqrt(1 + EPS)


def _conv_np(x_BxTxC, w_KxIxO, padding, dilation=1):
    k = w_KxIxO.shape[0]
    xp = np.pad(x_BxTxC, ((0, 0), (padding, padding), (0, 0)))
    out_len = xp.shape[1] - dilation * (k - 1)
    return sum(np.einsum("bti,io->bto", xp[:, j * dilation:j * dilation + out_len], w_KxIxO[j]) for j in range(k))


def _run(module, x, train=False):
    variables = module.init(jax.random.key(1), x, False)
    out = module.apply(variables, x, train, mutable=["batch_stats"])[0] if train else module.apply(variables, x, train)
    return np.asarray(out), jax.tree.map(np.asarray, variables.get("params", {}))


def test_pools_skip_and_none():
    x = np.arange(2 * T * C, dtype=np.float32).reshape(2, T, C) * np.array([1, -1, 0.5], np.float32)
    out = {name: _run(Op(name, C), x)[0] for name in ("max_pool_3", "avg_pool_3", "skip_connect", "none")}
    padded = np.pad(x, ((0, 0), (1, 1), (0, 0)), constant_values=np.nan)
    windows = np.stack([padded[:, t:t + 3] for t in range(T)], axis=1)  # (B, T, 3, C)
    np.testing.assert_allclose(out["max_pool_3"], np.nanmax(windows, axis=2))
    # count_include_pad=False: the edge windows average 2 values, not 3.
    np.testing.assert_allclose(out["avg_pool_3"], np.nanmean(windows, axis=2), rtol=1e-6)
    np.testing.assert_allclose(out["avg_pool_3"][:, 0], (x[:, 0] + x[:, 1]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(out["skip_connect"], x)
    np.testing.assert_array_equal(out["none"], np.zeros_like(x))
    assert {o.shape for o in out.values()} == {(2, T, C)}


@pytest.mark.parametrize("kernel", [3, 5])
def test_std_conv(kernel):
    x = _x()
    out, params = _run(Op(f"std_conv_{kernel}", C), x)
    w = params["StdConv_0"]["Conv1d_0"]["kernel"]
    assert w.shape == (kernel, C, C)  # a plain (not separable) convolution, C -> C
    assert out.shape == (2, T, C)
    np.testing.assert_allclose(out, _bn_eval(_conv_np(_lrelu(x), w, (kernel - 1) // 2)), atol=1e-5)


@pytest.mark.parametrize("kernel", [3, 5])
def test_dil_conv(kernel):
    x = _x()
    out, params = _run(Op(f"dil_conv_{kernel}", C), x)
    depthwise, pointwise = params["DilConv_0"]["depthwise"], params["DilConv_0"]["pointwise"]
    assert depthwise.shape == (kernel, 1, C) and pointwise.shape == (1, C, C)
    diagonal = np.zeros((kernel, C, C), np.float32)
    for c in range(C):
        diagonal[:, c, c] = depthwise[:, 0, c]
    expected = _conv_np(_conv_np(_lrelu(x), diagonal, kernel - 1, dilation=2), pointwise, 0)
    assert out.shape == (2, T, C)
    np.testing.assert_allclose(out, _bn_eval(expected), atol=1e-5)


def test_every_primitive_keeps_the_length():
    x = _x()
    assert {_run(Op(name, C), x)[0].shape for name in PRIMITIVES} == {(2, T, C)}


@pytest.mark.parametrize("op", [StdConv, DilConv])
def test_a_grouped_op_is_the_op_of_each_edge(op):
    """The supernet runs E edges reading one state in one call, outputs ordered (edge, channel)."""
    x = _x()
    grouped, params = _run(op(C, 3, False, edges=2), x, train=True)
    for e in range(2):
        single = op(C, 3, False, edges=1)
        if op is StdConv:
            edge_params = {"Conv1d_0": {"kernel": params["Conv1d_0"]["kernel"][..., e * C:(e + 1) * C]}}
        else:
            edge_params = {"depthwise": params["depthwise"][..., e * C:(e + 1) * C],
                           "pointwise": params["pointwise"][e:e + 1]}
        out = single.apply({"params": edge_params, "batch_stats": single.init(jax.random.key(0), x, False)[
            "batch_stats"]}, x, True, mutable=["batch_stats"])[0]
        np.testing.assert_allclose(grouped[..., e * C:(e + 1) * C], out, atol=1e-5)


def test_preprocessing_and_the_cell_end_pool():
    x = _x()
    halved, params = _run(Preprocess(4, halve=True), x)
    w = params["Conv1d_0"]["kernel"][0]
    y = _lrelu(x) @ w
    # MaxPool1d(2), floor mode: 7 steps -> 3, the last one dropped.
    np.testing.assert_allclose(halved, _bn_eval(np.maximum(y[:, 0:6:2], y[:, 1:6:2])), atol=1e-5)
    full, _ = _run(Preprocess(4, halve=False), x)
    np.testing.assert_allclose(full, _bn_eval(y), atol=1e-5)
    assert max_pool(x, 3).shape == (2, 2, C)
