"""The supernet under architecture samplers: GDAS' skipped ops change no number, only what is computed.

A group of mixed ops with hard (one-hot) weights shared by the batch computes only the ops some edge
selected (`nn.cond`); it must equal the dense computation in which each op feeds only the edges that
selected it, in value, in every gradient and in the BatchNorm statistics of the ops that ran, and leave
the statistics of the ops that did not run untouched.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.relaxations import SamplerConfig, sample_arch_weights
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.supernet import MixedOpGroup, SearchNetwork, init_supernet

PRIMITIVES = ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "dil_conv_3x3")
EDGES, FEATURES = 3, 4


def _group(stride, skip):
    return MixedOpGroup(PRIMITIVES, FEATURES, stride, EDGES, partial_k=2, skip_unselected=skip)


def _inputs():
    rng = np.random.default_rng(0)
    return jnp.asarray(rng.standard_normal((2, 6, 6, 2 * FEATURES)), jnp.float32)


def _hard_weights(logits, key):
    return sample_arch_weights(key, logits, 1.0, "gumbel_st")


def check_skipping_matches_dense(make_group, x, logits, ran):
    """make_group(skip_unselected) -> a mixed-op group; `logits` (edges, ops) nearly one-hot; `ran`: the
    names of the op modules the draw selects. Compares the skipping group with the dense masked mixture."""
    variables = make_group(False).init(jax.random.key(0), x, jnp.ones(logits.shape), True)
    variables, x, logits = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), (variables, x, logits))
    key = jax.random.key(1)
    (mixed, _), _ = make_group(False).apply(variables, x, _hard_weights(logits, key), True, mutable=["batch_stats"])
    cotangent = jnp.asarray(np.random.default_rng(2).standard_normal(mixed.shape))

    def run(skip, params, x, logits):
        weights = _hard_weights(logits, key)
        if not skip:  # the reference: every op runs, and feeds only the edges that selected it
            weights = jnp.where(jax.lax.stop_gradient(weights) != 0, weights, 0.0)
        (mixed, _), updates = make_group(skip).apply({**variables, "params": params}, x, weights, True,
                                                     mutable=["batch_stats"])
        return jnp.sum(mixed * cotangent), updates

    results = {}
    for skip in (True, False):
        (loss, updates), grads = jax.value_and_grad(lambda *a: run(skip, *a), argnums=(0, 1, 2), has_aux=True)(
            variables["params"], x, logits)
        results[skip] = (loss, grads, updates["batch_stats"])
    assert mixed.dtype == jnp.float64
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-12)
    for got, want in zip(jax.tree.leaves(results[True][1]), jax.tree.leaves(results[False][1])):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.abs(np.asarray(results[True][1][2])).sum() > 0  # α is reached through the selected ops
    assert set(results[True][2]) > set(ran)  # some ops were skipped
    for name, stats in results[True][2].items():
        for got, want, untouched in zip(jax.tree.leaves(stats), jax.tree.leaves(results[False][2][name]),
                                        jax.tree.leaves(variables["batch_stats"][name])):
            if name in ran:
                np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=name)
            else:  # a skipped op's statistics stay as they were, bit for bit
                np.testing.assert_array_equal(got, untouched, err_msg=name)
    assert "cond" in str(jax.make_jaxpr(lambda p: run(True, p, x, logits)[0])(variables["params"]))


def nearly_one_hot(choices, num_ops):
    return np.log(np.full((len(choices), num_ops), 1e-6)) + np.eye(num_ops)[choices] * 30.0


@pytest.mark.parametrize("stride", [1, 2])
def test_skipping_unselected_ops_equals_the_dense_masked_mixture(stride):
    # Edges 0 and 1 choose the same conv, edge 2 a pool: ConvOp_0 is sep_conv, BatchNorm_0 max_pool's BN;
    # four of the five real ops are never computed.
    with jax.enable_x64(True):  # float64, so the two computations compare far below their rounding
        check_skipping_matches_dense(lambda skip: _group(stride, skip), _inputs(), nearly_one_hot([4, 4, 1], 6),
                                     {"ConvOp_0", "BatchNorm_0"})


def test_all_edges_on_skip_connect_give_the_partial_channels_exactly():
    x = _inputs()
    group = _group(1, True)
    variables = group.init(jax.random.key(0), x, jnp.ones((EDGES, len(PRIMITIVES))), True)
    weights = jnp.asarray(np.eye(len(PRIMITIVES))[[3, 3, 3]], jnp.float32)
    (mixed, bypass), _ = group.apply(variables, x, weights, True, mutable=["batch_stats"])
    np.testing.assert_array_equal(mixed, np.broadcast_to(np.asarray(x)[..., None, :FEATURES], mixed.shape))
    np.testing.assert_array_equal(bypass, np.asarray(x)[..., FEATURES:])
    weights = jnp.asarray(np.eye(len(PRIMITIVES))[[0, 0, 0]], jnp.float32)  # 'none' everywhere
    (mixed, _), _ = group.apply(variables, x, weights, True, mutable=["batch_stats"])
    assert not np.asarray(mixed).any()


TINY = ModelConfig(layers=1, init_channels=4, num_samples=2048, primitives=PRIMITIVES[:1] + PRIMITIVES[3:5])


@pytest.fixture(scope="module")
def tiny_supernet():
    return init_supernet(0, TINY)


def test_one_draw_per_forward_pass_is_shared_by_the_batch_and_per_example_is_not(tiny_supernet):
    variables, arch = tiny_supernet
    wave = np.repeat(0.1 * np.random.default_rng(0).standard_normal((1, TINY.num_samples)), 4, 0).astype(np.float32)
    net = SearchNetwork(TINY)
    logits = {}
    for per_example in (False, True):
        sampler = SamplerConfig("gdas", per_example_sample=per_example)
        logits[per_example] = np.asarray(jax.jit(lambda v, a, k: net.apply(
            v, wave, a, train=False, sampler=sampler, tau=1.0, rngs={"gumbel": k}))(variables, arch, jax.random.key(3)))
    assert np.allclose(logits[False], logits[False][:1])  # four copies of one input, one architecture
    assert len({tuple(np.round(row, 5)) for row in logits[True]}) > 1  # four architectures


def test_sampled_supernet_keeps_the_parameter_tree_and_reaches_every_alpha_row_over_draws(tiny_supernet):
    variables, arch = tiny_supernet
    net = SearchNetwork(TINY)
    wave = jnp.asarray(0.1 * np.random.default_rng(1).standard_normal((2, TINY.num_samples)), jnp.float32)

    @jax.jit
    def grads(params, arch, key):
        def loss(params, arch):
            logits, _ = net.apply({**variables, "params": params}, wave, arch, train=True, mutable=["batch_stats"],
                                  sampler=SamplerConfig("gdas"), tau=1.0, rngs={"gumbel": key})
            return jnp.sum(nn.log_softmax(logits)[:, 0])
        return jax.grad(loss, argnums=(0, 1))(params, arch)

    reached = np.zeros(arch["alphas_reduce"].shape[0])
    for seed in range(12):  # 14 edges: all 12 draws 'none' (p = 1/3) on some edge has odds below 1e-4
        weight_grads, arch_grads = grads(variables["params"], arch, jax.random.key(seed))
        assert jax.tree.structure(weight_grads) == jax.tree.structure(variables["params"])
        reached += np.abs(np.asarray(arch_grads["alphas_reduce"])).sum(1) > 0
    # An edge that draws 'none' gets no gradient in that step (GDAS); over draws every edge is reached.
    assert (reached > 0).all(), reached
