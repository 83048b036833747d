"""The derived network: parameter parity with the authors' models (spec §1.1, §3), sizes, drop path, outputs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import Genotype
from darts_jax.spaces.pcdarts2d.genotype_text import KNOWN_GENOTYPES, load_genotype
from darts_jax.spaces.pcdarts2d.network import DerivedCell, DerivedNetwork, count_network_params, init_network
from darts_jax.spaces.pcdarts2d.skeleton import CellPlan

PUBLISHED = "pcdarts-lfcc"
CONCAT = (2, 3, 4, 5)
TINY = ModelConfig(frontend="lfcc", layers=4, init_channels=4, num_samples=4096)


def _derived_param_formula(layers, c, genotype):
    """Trainable parameters by spec §3's formula (BN counted as 2C)."""
    def op_cost(name, ch, strided):
        if name.startswith(("sep_conv", "dil_conv")):
            k = int(name[-1])
            unit = k * k * ch + ch * ch + 2 * ch
            return 2 * unit if name.startswith("sep") else unit
        return ch * ch + 2 * ch if name == "skip_connect" and strided else 0

    total = 9 * c // 2 + c + 9 * c * c // 2 + 2 * c + 9 * c * c + 2 * c
    c_pp = c_p = c_cur = c
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        c_cur *= 2 if reduction else 1
        total += c_pp * c_cur + c_p * c_cur
        for name, source in genotype.reduce if reduction else genotype.normal:
            total += op_cost(name, c_cur, reduction and source < 2)
        c_pp, c_p = c_p, 4 * c_cur
    return total + 4 * c_cur * 2 + 2


# ------------------------------------------------------------------------------ parameter parity

@pytest.mark.parametrize("layers,channels,expected", [(4, 16, 147_274), (8, 32, 974_898), (16, 64, 7_515_682)])
def test_published_genotype_parameter_parity(layers, channels, expected):
    # Spec §1.1: 4-16 matches the released checkpoint; 16-64 is the 7.51 M of the paper's table.
    genotype = load_genotype(PUBLISHED)
    assert count_network_params(ModelConfig(layers=layers, init_channels=channels), genotype) == expected
    assert _derived_param_formula(layers, channels, genotype) == expected


def test_parameter_count_follows_spec_formula_for_other_genotypes():
    # Strided skips (FactorizedReduce with affine BN) and every op family, at a size with other reductions.
    genotype = Genotype(
        normal=(("skip_connect", 0), ("dil_conv_3x3", 1), ("sep_conv_3x3", 0), ("max_pool_3x3", 2),
                ("skip_connect", 3), ("dil_conv_5x5", 1), ("avg_pool_3x3", 4), ("sep_conv_5x5", 2)),
        normal_concat=CONCAT,
        reduce=(("skip_connect", 0), ("skip_connect", 1), ("sep_conv_5x5", 1), ("skip_connect", 2),
                ("max_pool_3x3", 0), ("dil_conv_5x5", 3), ("avg_pool_3x3", 1), ("sep_conv_3x3", 4)),
        reduce_concat=CONCAT)
    for layers, channels in ((5, 8), (7, 6)):
        assert count_network_params(ModelConfig(layers=layers, init_channels=channels), genotype) == \
            _derived_param_formula(layers, channels, genotype)


# ---------------------------------------------------------------------------------- spatial sizes

@pytest.mark.parametrize("frontend,height", [
    # (feature rows after stem0's first conv, s0, s1 / cell 0, first reduction, second reduction), spec §3
    ("lfcc", (30, 15, 8, 4, 2)), ("lfb", (35, 18, 9, 5, 3)), ("spec", (257, 129, 65, 33, 17))])
def test_spatial_sizes_for_four_seconds(frontend, height):
    config = ModelConfig(frontend=frontend, layers=4, init_channels=2)
    net = DerivedNetwork(config, KNOWN_GENOTYPES[PUBLISHED])
    wave = jax.ShapeDtypeStruct((1, 64000), jnp.float32)

    def run(wave):
        variables = net.init(jax.random.key(0), wave, train=False)
        return net.apply(variables, wave, train=False, capture_intermediates=True, mutable=["intermediates"])

    _, state = jax.eval_shape(run, wave)
    found = state["intermediates"]
    time = (126, 63, 32, 16, 8)  # 251 frames halved (ceil) by each stride-2 step
    c = config.init_channels
    assert found["Stems_0"]["Conv_0"]["__call__"][0].shape == (1, height[0], time[0], c // 2)
    s0, s1 = found["Stems_0"]["__call__"][0]
    assert s0.shape == (1, height[1], time[1], c)
    assert s1.shape == (1, height[2], time[2], c)
    cells = [found[f"DerivedCell_{i}"]["__call__"][0].shape for i in range(4)]
    assert cells == [(1, height[2], time[2], 4 * c), (1, height[3], time[3], 8 * c),
                     (1, height[4], time[4], 16 * c), (1, height[4], time[4], 16 * c)]


# ----------------------------------------------------------------------------- outputs, drop path

@pytest.fixture(scope="module")
def tiny_network():
    net = DerivedNetwork(TINY, KNOWN_GENOTYPES[PUBLISHED])
    variables = init_network(0, TINY, KNOWN_GENOTYPES[PUBLISHED])
    wave = jnp.asarray(np.random.default_rng(0).normal(size=(3, TINY.num_samples)) * 0.1, jnp.float32)
    return net, variables, wave


def test_network_returns_logits_and_embedding(tiny_network):
    net, variables, wave = tiny_network
    logits, embedding = net.apply(variables, wave, train=False)
    assert logits.shape == (3, 2)
    assert embedding.shape == (3, 16 * TINY.init_channels)
    head = variables["params"]["Head_0"]["Dense_0"]
    np.testing.assert_allclose(logits, embedding @ head["kernel"] + head["bias"], rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(logits))


def test_drop_path_only_in_training(tiny_network):
    net, variables, wave = tiny_network

    def run(key, train, drop):
        return net.apply(variables, wave, train=train, drop_prob=drop, rngs={"dropout": key},
                         mutable=["batch_stats"])[0][0]

    # p = 0.5, not close to 1: at p = 0.9 whole cells of this 3-sample net are often dropped, and the
    # zeros then propagate (train-mode BN of an all-zero input is zero), so every key gives the bias.
    drop = jnp.float32(0.5)
    first, second = run(jax.random.key(1), True, drop), run(jax.random.key(2), True, drop)
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(run(jax.random.key(1), True, drop), first)
    evaluated = run(jax.random.key(1), False, drop)
    np.testing.assert_array_equal(run(jax.random.key(2), False, drop), evaluated)
    np.testing.assert_array_equal(net.apply(variables, wave, train=False)[0], evaluated)
    np.testing.assert_array_equal(run(jax.random.key(1), True, jnp.float32(0.0)),
                                  net.apply(variables, wave, train=True, mutable=["batch_stats"])[0][0])


def _cell_outputs(plan, ops, drop_prob, train=True):
    rng = np.random.default_rng(3)
    s0 = jnp.asarray(rng.normal(size=(4, 6, 5, 6)), jnp.float32)
    s1 = jnp.asarray(rng.normal(size=(4, 6, 5, 6)), jnp.float32)
    cell = DerivedCell(plan, ops, CONCAT)
    variables = cell.init(jax.random.key(0), s0, s1, train=False, drop_prob=None)
    out, state = cell.apply(variables, s0, s1, train=train, drop_prob=drop_prob, rngs={"dropout": jax.random.key(5)},
                            capture_intermediates=True, mutable=["batch_stats", "intermediates"])
    c = plan.channels
    return [out[..., i * c:(i + 1) * c] for i in range(4)], state["intermediates"]


def test_drop_path_spares_identity_edges_only():
    plan = CellPlan(reduction=False, reduction_prev=False, channels=4)
    ops = (("skip_connect", 0), ("avg_pool_3x3", 1),
           ("skip_connect", 1), ("max_pool_3x3", 2),
           ("sep_conv_3x3", 0), ("dil_conv_3x3", 1),
           ("skip_connect", 2), ("avg_pool_3x3", 3))
    nodes, found = _cell_outputs(plan, ops, jnp.float32(1.0))
    s0 = found["ReLUConvBN_0"]["__call__"][0]
    s1 = found["ReLUConvBN_1"]["__call__"][0]
    # Every non-identity op output is dropped; identity edges pass their input through unscaled.
    np.testing.assert_allclose(nodes[0], s0, rtol=1e-6)
    np.testing.assert_allclose(nodes[1], s1, rtol=1e-6)
    np.testing.assert_array_equal(nodes[2], 0.0)
    np.testing.assert_allclose(nodes[3], s0, rtol=1e-6)
    assert np.any(np.asarray(s0) != 0) and np.any(np.asarray(s1) != 0)
    undropped, _ = _cell_outputs(plan, ops, None)
    assert not np.allclose(undropped[0], s0)
    evaluated, _ = _cell_outputs(plan, ops, jnp.float32(1.0), train=False)
    reference, _ = _cell_outputs(plan, ops, None, train=False)
    for node, ref in zip(evaluated, reference):
        np.testing.assert_array_equal(node, ref)


def test_drop_path_drops_strided_skip():
    plan = CellPlan(reduction=True, reduction_prev=False, channels=4)
    ops = (("skip_connect", 0), ("skip_connect", 1),
           ("skip_connect", 2), ("avg_pool_3x3", 0),
           ("max_pool_3x3", 1), ("skip_connect", 3),
           ("skip_connect", 2), ("skip_connect", 4))
    nodes, _ = _cell_outputs(plan, ops, jnp.float32(1.0))
    for node in nodes:
        np.testing.assert_array_equal(node, 0.0)
    undropped, _ = _cell_outputs(plan, ops, None)
    assert np.any(np.asarray(undropped[0]) != 0)
