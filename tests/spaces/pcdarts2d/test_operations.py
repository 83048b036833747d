"""Candidate operations: output sizes, parameter counts (spec §2.1, §3) and the merged supernet edges."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.nn.layers import avg_pool_3x3, init_variables, max_pool_2x2_ceil, max_pool_3x3
from darts_jax.spaces.pcdarts2d.operations import ConvOp, FactorizedReduce, Op
from darts_jax.spaces.pcdarts2d.supernet import MixedOpGroup

EPS = 1e-5
SIZES = [(7, 10), (8, 9)]  # odd/even and even/odd feature x time maps


def _param_count(module, x_shape, *args):
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), jnp.zeros(x_shape), *args, train=True))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(shapes.get("params", {})))


def _output_shapes(module, x_shape, *args):
    def run(x):
        variables = module.init(jax.random.key(0), x, *args, train=True)
        return module.apply(variables, x, *args, train=True, mutable=["batch_stats"])[0]
    return jax.eval_shape(run, jax.ShapeDtypeStruct(x_shape, jnp.float32))


def _strided(size, stride):
    return -(-size // stride)


# ----------------------------------------------------------------------------------- output sizes

@pytest.mark.parametrize("primitive", PRIMITIVES)
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", SIZES)
def test_derived_op_output_size(primitive, stride, size):
    channels = 6
    out = _output_shapes(Op(primitive, channels, stride), (2, *size, channels))
    assert out.shape == (2, _strided(size[0], stride), _strided(size[1], stride), channels)


@pytest.mark.parametrize("partial_k", [1, 2, 4])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", SIZES)
def test_mixed_op_group_output_sizes(partial_k, stride, size):
    features, edges = 2, 3
    channels = partial_k * features
    mixed, bypass = _output_shapes(MixedOpGroup(PRIMITIVES, features, stride, edges, partial_k),
                                   (2, *size, channels), jnp.ones((edges, len(PRIMITIVES))))
    spatial = (_strided(size[0], stride), _strided(size[1], stride))
    assert mixed.shape == (2, *spatial, edges, features)
    if partial_k == 1:
        assert bypass is None
    else:
        assert bypass.shape == (2, *spatial, channels - features)


def test_derived_op_values_of_parameter_free_primitives():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 6, 3)), jnp.float32)
    for stride in (1, 2):
        for name, pool in (("avg_pool_3x3", avg_pool_3x3), ("max_pool_3x3", max_pool_3x3)):
            module = Op(name, 3, stride)
            assert not module.init(jax.random.key(0), x, train=True)
            # The derived network's pools are not followed by BN (spec §3).
            np.testing.assert_array_equal(module.apply({}, x, train=True), pool(x, stride))
        np.testing.assert_array_equal(Op("none", 3, stride).apply({}, x, train=True),
                                      np.zeros((2, _strided(7, stride), _strided(6, stride), 3)))
    np.testing.assert_array_equal(Op("skip_connect", 3, 1).apply({}, x, train=True), x)


# ------------------------------------------------------------------------------ parameter counts

@pytest.mark.parametrize("affine", [False, True])
def test_factorized_reduce_parameter_count(affine):
    c_in, c_out = 6, 4
    assert _param_count(FactorizedReduce(c_out, affine), (1, 5, 5, c_in)) == c_in * c_out + (2 * c_out if affine else 0)
    # Merged over edges: one C_in x C_out map per edge.
    assert _param_count(FactorizedReduce(c_out, False, edges=3), (1, 5, 5, c_in)) == 3 * c_in * c_out


@pytest.mark.parametrize("primitive", PRIMITIVES)
def test_derived_op_parameter_counts(primitive):
    c = 6
    # Spec §3, BN counted as 2C: sep_k 2(k²C + C² + 2C), dil_k k²C + C² + 2C, strided skip C² + 2C.
    expected = {"sep_conv_3x3": 2 * (9 * c + c * c + 2 * c), "sep_conv_5x5": 2 * (25 * c + c * c + 2 * c),
                "dil_conv_3x3": 9 * c + c * c + 2 * c, "dil_conv_5x5": 25 * c + c * c + 2 * c}
    for stride in (1, 2):
        count = expected.get(primitive, c * c + 2 * c if primitive == "skip_connect" and stride == 2 else 0)
        assert _param_count(Op(primitive, c, stride), (1, 8, 8, c)) == count, stride


@pytest.mark.parametrize("family,kernel", [("sep", 3), ("sep", 5), ("dil", 3), ("dil", 5)])
def test_merged_conv_op_has_one_set_of_weights_per_edge(family, kernel):
    c, edges = 4, 3
    units = 2 if family == "sep" else 1
    single = _param_count(ConvOp(family, kernel, c, 1, affine=False), (1, 6, 6, c))
    assert single == units * (kernel * kernel * c + c * c)
    assert _param_count(ConvOp(family, kernel, c, 1, affine=False, edges=edges), (1, 6, 6, c)) == edges * single


# -------------------------------------------------- merged supernet edges against separate edges

def _edge_slice(tree, edge, edges):
    """The part of merged op variables that belongs to one edge.

    Per-edge 1x1 kernels are (edges, c_in, c_out); every other merged tensor (depthwise kernels, the
    FactorizedReduce 1x1 kernel, BN statistics) has its last axis ordered (edge, channel).
    """
    flat = traverse_util.flatten_dict(tree)
    sliced = {}
    for path, leaf in flat.items():
        if any(name.startswith("EdgePointwise") for name in path):
            sliced[path] = leaf[edge:edge + 1]
        else:
            width = leaf.shape[-1] // edges
            sliced[path] = leaf[..., edge * width:(edge + 1) * width]
    return traverse_util.unflatten_dict(sliced)


def _reference_pool(x, stride, reduce):
    """3x3 window, padding 1 (padded taps ignored), stride s, by direct loops."""
    b, h, w, c = x.shape
    out = np.zeros((b, _strided(h, stride), _strided(w, stride), c))
    for i, row in enumerate(range(0, h, stride)):
        for j, col in enumerate(range(0, w, stride)):
            window = x[:, max(row - 1, 0):row + 2, max(col - 1, 0):col + 2, :]
            out[:, i, j, :] = reduce(window, axis=(1, 2))
    return out


def _reference_batchnorm(y):
    y = np.asarray(y, np.float64)
    return (y - y.mean((0, 1, 2))) / np.sqrt(y.var((0, 1, 2)) + EPS)


def _separate_conv_modules(params, features, stride, impl):
    """Single-edge modules for the merged conv ops, told apart by structure, not by creation order."""
    modules = {}
    for name, subtree in params.items():
        if name.startswith("FactorizedReduce"):
            modules[name] = FactorizedReduce(features, affine=False)
        elif name.startswith("ConvOp"):
            family = "sep" if "ConvUnit_1" in subtree else "dil"
            (depthwise,) = subtree["ConvUnit_0"]["DepthwiseConv_0"].values()
            modules[name] = ConvOp(family, depthwise.shape[0], features, stride, affine=False, depthwise=impl)
    return modules


def _primitive_of(module):
    if isinstance(module, FactorizedReduce):
        return "skip_connect"
    return f"{module.family}_conv_{module.kernel}x{module.kernel}"


@pytest.mark.parametrize("partial_k,stride,impl", [(2, 1, "dense"), (2, 2, "grouped"), (1, 2, "dense"),
                                                    (4, 1, "grouped")])
def test_merged_edges_equal_separate_edges(partial_k, stride, impl):
    features, edges = 4, 3
    rng = np.random.default_rng(partial_k * 10 + stride)
    x = jnp.asarray(rng.normal(size=(2, 7, 6, partial_k * features)), jnp.float32)
    op_weights = jax.nn.softmax(jnp.asarray(rng.normal(size=(edges, len(PRIMITIVES))), jnp.float32))
    group = MixedOpGroup(PRIMITIVES, features, stride, edges, partial_k, depthwise=impl)
    variables = init_variables(group, 3, x, op_weights, train=False)
    (mixed, bypass), updates = group.apply(variables, x, op_weights, train=True, mutable=["batch_stats"])

    partial = x[..., :features]
    modules = _separate_conv_modules(variables["params"], features, stride, impl)
    assert sorted(_primitive_of(m) for m in modules.values()) == sorted(
        p for p in PRIMITIVES if p.startswith(("sep", "dil")) or (p == "skip_connect" and stride == 2))
    # Pools (each followed by BN affine=False in the supernet) and identity do not depend on the edge.
    shared = {"max_pool_3x3": _reference_batchnorm(_reference_pool(np.asarray(partial), stride, np.max)),
              "avg_pool_3x3": _reference_batchnorm(_reference_pool(np.asarray(partial), stride, np.mean))}
    if stride == 1:
        shared["skip_connect"] = np.asarray(partial)
    for e in range(edges):
        outputs = dict(shared)
        for name, module in modules.items():
            edge_vars = {"params": _edge_slice(variables["params"][name], e, edges),
                         "batch_stats": _edge_slice(variables["batch_stats"][name], e, edges)}
            y, edge_updates = module.apply(edge_vars, partial, train=True, mutable=["batch_stats"])
            outputs[_primitive_of(module)] = np.asarray(y)
            jax.tree.map(lambda merged, single: np.testing.assert_allclose(merged, single, rtol=1e-5, atol=1e-6),
                         _edge_slice(updates["batch_stats"][name], e, edges), edge_updates["batch_stats"])
        expected = sum(float(op_weights[e, o]) * outputs[p] for o, p in enumerate(PRIMITIVES) if p != "none")
        np.testing.assert_allclose(mixed[..., e, :], expected, rtol=1e-4, atol=1e-5, err_msg=f"edge {e}")

    if partial_k == 1:
        assert bypass is None
    else:
        rest = x[..., features:]
        np.testing.assert_array_equal(bypass, rest if stride == 1 else max_pool_2x2_ceil(rest))

