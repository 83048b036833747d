"""Layers against hand-computed values and independent NumPy references (PyTorch semantics, spec §2.1, §10)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.engine import collectives
from darts_jax.nn import layers

EPS = 1e-5


def _arange_map(h=4, w=5):
    """A 1 x h x w x 1 map whose value at (row, col) is w*row + col."""
    return jnp.arange(h * w, dtype=jnp.float32).reshape(1, h, w, 1)


# ----------------------------------------------------------------------------------------- pooling

def test_avg_pool_3x3_divides_by_valid_taps_only():
    # Windows are rectangles of valid rows x valid cols, so the mean is 5*mean(rows) + mean(cols).
    # Row means for rows 0..3: .5, 1, 2, 2.5; column means for cols 0..4: .5, 1, 2, 3, 3.5.
    expected = np.array([[3.0, 3.5, 4.5, 5.5, 6.0],
                         [5.5, 6.0, 7.0, 8.0, 8.5],
                         [10.5, 11.0, 12.0, 13.0, 13.5],
                         [13.0, 13.5, 14.5, 15.5, 16.0]])
    np.testing.assert_allclose(layers.avg_pool_3x3(_arange_map(), 1)[0, ..., 0], expected, rtol=1e-6)


def test_avg_pool_3x3_stride_2_keeps_ceil_size():
    # Stride 2 samples rows {0, 2} and cols {0, 2, 4} of the stride-1 result: ceil(4/2) x ceil(5/2).
    expected = np.array([[3.0, 4.5, 6.0], [10.5, 12.0, 13.5]])
    np.testing.assert_allclose(layers.avg_pool_3x3(_arange_map(), 2)[0, ..., 0], expected, rtol=1e-6)


def test_avg_pool_3x3_keeps_batch_and_channels_apart():
    x = _arange_map()
    stacked = jnp.concatenate([jnp.concatenate([x, -2 * x], -1), jnp.concatenate([3 * x, x + 1], -1)], 0)
    out = layers.avg_pool_3x3(stacked, 1)
    single = layers.avg_pool_3x3(x, 1)[0, ..., 0]
    np.testing.assert_allclose(out[0, ..., 1], -2 * single, rtol=1e-6)
    np.testing.assert_allclose(out[1, ..., 0], 3 * single, rtol=1e-6)
    np.testing.assert_allclose(out[1, ..., 1], single + 1, rtol=1e-6)


def test_max_pool_3x3_values():
    # max over the window is at the largest valid row and column: 5*min(r+1, 3) + min(c+1, 4).
    expected = np.array([[6, 7, 8, 9, 9],
                         [11, 12, 13, 14, 14],
                         [16, 17, 18, 19, 19],
                         [16, 17, 18, 19, 19]], np.float32)
    np.testing.assert_array_equal(layers.max_pool_3x3(_arange_map(), 1)[0, ..., 0], expected)
    np.testing.assert_array_equal(layers.max_pool_3x3(_arange_map(), 2)[0, ..., 0], expected[::2, ::2])


def test_max_pool_3x3_padding_never_wins_for_negative_input():
    # x = -1 - (5*row + col): the max is at the smallest valid row and column, always < 0.
    x = -1.0 - _arange_map()
    expected = np.array([[-1, -1, -2, -3, -4],
                         [-1, -1, -2, -3, -4],
                         [-6, -6, -7, -8, -9],
                         [-11, -11, -12, -13, -14]], np.float32)
    np.testing.assert_array_equal(layers.max_pool_3x3(x, 1)[0, ..., 0], expected)
    np.testing.assert_array_equal(layers.max_pool_3x3(x, 2)[0, ..., 0], np.array([[-1, -2, -4], [-6, -7, -9]]))


def test_max_pool_2x2_ceil_keeps_last_row_and_column_of_odd_sizes():
    # 4 x 5 map: row pairs {0,1}, {2,3}; column groups {0,1}, {2,3}, {4} (ceil mode).
    np.testing.assert_array_equal(layers.max_pool_2x2_ceil(_arange_map())[0, ..., 0],
                                  np.array([[6, 8, 9], [16, 18, 19]], np.float32))
    # 5 x 3 all-negative map x = -1 - (3*row + col): the lone last row/column must not see padding.
    x = -1.0 - jnp.arange(15, dtype=jnp.float32).reshape(1, 5, 3, 1)
    np.testing.assert_array_equal(layers.max_pool_2x2_ceil(x)[0, ..., 0],
                                  np.array([[-1, -3], [-7, -9], [-13, -15]], np.float32))


def test_max_pool_2x2_ceil_even_sizes_halve_exactly():
    x = _arange_map(4, 6)
    np.testing.assert_array_equal(layers.max_pool_2x2_ceil(x)[0, ..., 0],
                                  np.array([[7, 9, 11], [19, 21, 23]], np.float32))


# ---------------------------------------------------------------------------------- channel shuffle

def test_channel_shuffle_two_groups_interleaves_halves():
    c = 8
    x = jnp.arange(c, dtype=jnp.float32).reshape(1, 1, 1, c)
    out = np.asarray(layers.channel_shuffle(x, 2))[0, 0, 0]
    np.testing.assert_array_equal(out, [0, 4, 1, 5, 2, 6, 3, 7])
    half = c // 2
    for i in range(half):
        assert out[2 * i] == i and out[2 * i + 1] == half + i


def test_channel_shuffle_four_groups():
    # view (4, 2) -> transpose (2, 4) -> flatten: out[j*4 + g] = in[g*2 + j].
    x = jnp.arange(8, dtype=jnp.float32).reshape(1, 1, 1, 8)
    np.testing.assert_array_equal(layers.channel_shuffle(x, 4)[0, 0, 0], [0, 2, 4, 6, 1, 3, 5, 7])


def test_channel_shuffle_moves_whole_feature_maps():
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, 3, 4, 6)), jnp.float32)
    out = layers.channel_shuffle(x, 2)
    for i in range(3):
        np.testing.assert_array_equal(out[..., 2 * i], x[..., i])
        np.testing.assert_array_equal(out[..., 2 * i + 1], x[..., 3 + i])
    np.testing.assert_array_equal(layers.channel_shuffle(x, 1), x)


# ------------------------------------------------------------------------------- depthwise conv

def _reference_depthwise(x, kernel, stride, padding, dilation):
    """Per-channel direct convolution in float64; output channel e*C + c filters input channel c."""
    x = np.asarray(x, np.float64)
    kernel = np.asarray(kernel, np.float64)
    b, h, w, c = x.shape
    k = kernel.shape[0]
    copies = kernel.shape[-1] // c
    span = dilation * (k - 1)
    h_out = (h + 2 * padding - span - 1) // stride + 1
    w_out = (w + 2 * padding - span - 1) // stride + 1
    padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    out = np.zeros((b, h_out, w_out, copies * c))
    for e in range(copies):
        for i in range(k):
            for j in range(k):
                rows = slice(i * dilation, i * dilation + stride * (h_out - 1) + 1, stride)
                cols = slice(j * dilation, j * dilation + stride * (w_out - 1) + 1, stride)
                out[..., e * c:(e + 1) * c] += padded[:, rows, cols, :] * kernel[i, j, e * c:(e + 1) * c]
    return out


@pytest.mark.parametrize("copies", [1, 3])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("kernel_size", [3, 5])
def test_depthwise_conv2d_dense_and_grouped_match_reference(copies, stride, dilation, kernel_size):
    rng = np.random.default_rng(copies * 100 + stride * 10 + dilation + kernel_size)
    channels = 3
    x = rng.normal(size=(2, 7, 9, channels)).astype(np.float32)
    kernel = rng.normal(size=(kernel_size, kernel_size, copies * channels)).astype(np.float32)
    padding = dilation * (kernel_size - 1) // 2
    expected = _reference_depthwise(x, kernel, stride, padding, dilation)
    assert expected.shape == (2, -(-7 // stride), -(-9 // stride), copies * channels)
    for impl in ("dense", "grouped"):
        out = layers.depthwise_conv2d(jnp.asarray(x), jnp.asarray(kernel), stride, padding, dilation, impl)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5, err_msg=impl)


# ------------------------------------------------------------------------------------ BatchNorm

def _batch(seed=0, shape=(3, 4, 5, 6)):
    rng = np.random.default_rng(seed)
    return jnp.asarray(rng.normal(size=shape) * rng.uniform(0.5, 3, shape[-1]) + rng.normal(size=shape[-1]) * 4,
                       jnp.float32)


def test_batchnorm_train_normalises_with_biased_batch_variance():
    x = _batch()
    bn = layers.BatchNorm(affine=True)
    variables = bn.init(jax.random.key(0), x, train=True)
    y, _ = bn.apply(variables, x, train=True, mutable=["batch_stats"])
    xn = np.asarray(x, np.float64)
    mean, var = xn.mean((0, 1, 2)), xn.var((0, 1, 2))
    np.testing.assert_allclose(y, (xn - mean) / np.sqrt(var + EPS), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y).mean((0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.asarray(y).var((0, 1, 2)), var / (var + EPS), rtol=1e-4)


def test_batchnorm_running_stats_momentum_and_unbiased_variance():
    bn = layers.BatchNorm(affine=False)
    first, second = _batch(1), _batch(2)
    variables = bn.init(jax.random.key(0), first, train=True)
    np.testing.assert_array_equal(variables["batch_stats"]["mean"], 0.0)
    np.testing.assert_array_equal(variables["batch_stats"]["var"], 1.0)
    running_mean, running_var = np.zeros(6), np.ones(6)
    for x in (first, second):
        _, updates = bn.apply(variables, x, train=True, mutable=["batch_stats"])
        variables = {**variables, **updates}
        xn = np.asarray(x, np.float64)
        n = xn.size // xn.shape[-1]
        running_mean = 0.9 * running_mean + 0.1 * xn.mean((0, 1, 2))
        running_var = 0.9 * running_var + 0.1 * xn.var((0, 1, 2)) * n / (n - 1)
        np.testing.assert_allclose(variables["batch_stats"]["mean"], running_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(variables["batch_stats"]["var"], running_var, rtol=1e-5)


def test_batchnorm_eval_uses_running_stats_and_affine_params():
    x = _batch(3)
    bn = layers.BatchNorm(affine=True)
    variables = bn.init(jax.random.key(0), x, train=False)
    rng = np.random.default_rng(4)
    mean, var = rng.normal(size=6), rng.uniform(0.5, 2.0, 6)
    scale, bias = rng.normal(size=6), rng.normal(size=6)
    variables = {"params": {"scale": jnp.asarray(scale, jnp.float32), "bias": jnp.asarray(bias, jnp.float32)},
                 "batch_stats": {"mean": jnp.asarray(mean, jnp.float32), "var": jnp.asarray(var, jnp.float32)}}
    y = bn.apply(variables, x, train=False)
    expected = (np.asarray(x, np.float64) - mean) / np.sqrt(var + EPS) * scale + bias
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_batchnorm_without_affine_has_no_params():
    variables = layers.BatchNorm(affine=False).init(jax.random.key(0), _batch(), train=True)
    assert not variables.get("params")
    variables = layers.BatchNorm(affine=True).init(jax.random.key(0), _batch(), train=True)
    assert set(variables["params"]) == {"scale", "bias"}


def test_batchnorm_across_devices_equals_whole_batch():
    x = _batch(5, (4, 3, 2, 5))
    bn = layers.BatchNorm(affine=False)
    variables = bn.init(jax.random.key(0), x, train=True)
    whole, whole_stats = bn.apply(variables, x, train=True, mutable=["batch_stats"])
    def on_one_device(part):
        with collectives.mapped_over("data"):
            return bn.apply(variables, part, train=True, mutable=["batch_stats"])

    split, split_stats = jax.vmap(on_one_device, axis_name="data")(x.reshape(2, 2, 3, 2, 5))
    np.testing.assert_allclose(split.reshape(x.shape), whole, rtol=1e-5, atol=1e-5)
    for name in ("mean", "var"):
        np.testing.assert_allclose(split_stats["batch_stats"][name][0], whole_stats["batch_stats"][name], rtol=1e-5)


# ----------------------------------------------------------------------------------- drop path

def test_drop_path_zero_probability_is_identity():
    x = _batch()
    np.testing.assert_array_equal(layers.drop_path(jax.random.key(0), x, 0.0), x)


def test_drop_path_masks_whole_samples_and_rescales():
    p, batch = 0.3, 4000
    x = jnp.broadcast_to(jnp.arange(1.0, 7.0).reshape(1, 1, 2, 3), (batch, 2, 2, 3))
    out = np.asarray(layers.drop_path(jax.random.key(1), x, p))
    kept = np.all(np.isclose(out, np.asarray(x) / (1 - p), rtol=1e-6), axis=(1, 2, 3))
    dropped = np.all(out == 0.0, axis=(1, 2, 3))
    assert np.all(kept ^ dropped), "every sample is either kept whole (scaled by 1/(1-p)) or zeroed whole"
    # Keep fraction 0.7 +- 5 standard deviations of a Binomial(4000, 0.7) proportion.
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / batch)
    other = np.asarray(layers.drop_path(jax.random.key(2), x, p))
    assert not np.array_equal(out, other)


def test_drop_path_accepts_traced_probability():
    x = _batch()
    key = jax.random.key(3)
    eager = layers.drop_path(key, x, 0.5)
    traced = jax.jit(layers.drop_path)(key, x, jnp.float32(0.5))
    np.testing.assert_allclose(traced, eager, rtol=1e-6)


# ------------------------------------------------------------------------------- initialisation

def test_torch_uniform_bounds():
    fan_in = 25
    values = np.asarray(layers.torch_uniform(fan_in)(jax.random.key(0), (20000,)))
    bound = 1 / np.sqrt(fan_in)
    assert values.min() >= -bound and values.max() <= bound
    assert values.min() < -0.99 * bound and values.max() > 0.99 * bound


class _AllLayers(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = layers.Conv(6, kernel=3, padding=1)(x)
        x = layers.DepthwiseConv(copies=2, kernel=5, padding=2, impl="dense")(x)
        x = layers.EdgePointwise(edges=2, features=3)(x)
        x = layers.BatchNorm(affine=True)(x, train=False)
        return layers.Dense(2)(x.mean((1, 2)))


# One init path: Flax's own init (keys through XLA) and the host-side NumPy one read the same declarations.
@pytest.mark.parametrize("initialise", [lambda module, x: layers.init_variables(module, 7, x),
                                        lambda module, x: module.init(jax.random.key(7), x)],
                         ids=["init_variables", "flax_init"])
def test_init_uses_pytorch_fan_in_bounds(initialise):
    module, x = _AllLayers(), jnp.zeros((1, 6, 6, 4))
    variables = initialise(module, x)
    params = variables["params"]
    bounds = {  # 1/sqrt(fan_in) with PyTorch's fan-in of each weight
        ("Conv_0", "kernel"): 1 / np.sqrt(3 * 3 * 4),
        ("DepthwiseConv_0", "depthwise"): 1 / np.sqrt(5 * 5),
        ("EdgePointwise_0", "pointwise"): 1 / np.sqrt(6),
        ("Dense_0", "kernel"): 1 / np.sqrt(6),
        ("Dense_0", "bias"): 1 / np.sqrt(6),
    }
    for (module_name, leaf), bound in bounds.items():
        values = np.asarray(params[module_name][leaf])
        assert np.all(np.abs(values) <= bound), module_name
        if values.size >= 50:
            assert np.abs(values).max() > 0.8 * bound, module_name
    np.testing.assert_array_equal(params["BatchNorm_0"]["scale"], 1.0)
    np.testing.assert_array_equal(params["BatchNorm_0"]["bias"], 0.0)
    np.testing.assert_array_equal(variables["batch_stats"]["BatchNorm_0"]["mean"], 0.0)
    np.testing.assert_array_equal(variables["batch_stats"]["BatchNorm_0"]["var"], 1.0)
    flax_shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x))
    assert jax.tree.map(lambda a: a.shape, dict(variables)) == jax.tree.map(lambda a: a.shape, dict(flax_shapes))


def test_init_variables_is_seeded():
    module, x = _AllLayers(), jnp.zeros((1, 6, 6, 4))
    variables = layers.init_variables(module, 7, x)
    params = variables["params"]
    again, other = layers.init_variables(module, 7, x), layers.init_variables(module, 8, x)
    jax.tree.map(np.testing.assert_array_equal, again, variables)
    assert not np.array_equal(other["params"]["Conv_0"]["kernel"], params["Conv_0"]["kernel"])


def test_init_variables_refuses_an_undeclared_initialiser():
    class Foreign(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x @ self.param("w", nn.initializers.lecun_normal(), (x.shape[-1], 2))

    with pytest.raises(TypeError, match="w: declared without a darts_jax.nn.layers initialiser"):
        layers.init_variables(Foreign(), 0, jnp.zeros((1, 3)))
