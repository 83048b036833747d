"""The fusion supernet and derived network: architecture shapes, how the sampler's draws reach the forward
pass, gradients to α, and a derived network that reads only its genotype's taps."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.engine.state import count_params
from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces import get_space
from darts_jax.spaces.fusion import FusionConfig
from darts_jax.spaces.fusion.genotype import parse_genotype_text
from darts_jax.spaces.fusion.network import FusionNetwork, init_network
from darts_jax.spaces.fusion.supernet import FusionSupernet, init_supernet

CONFIG = FusionConfig(tap_channels=(3, 4, 2, 2, 3, 4, 2, 2), channels=6, dropout=0.0)
WIDTH = sum(CONFIG.tap_channels)


@pytest.fixture(scope="module")
def supernet():
    variables, arch = init_supernet(0, CONFIG)
    return variables, arch


def _inputs(batch=4, seed=0):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, CONFIG.length, WIDTH)), jnp.float32)


def test_architecture_values_have_the_spaces_shapes(supernet):
    _, arch = supernet
    assert arch["alpha"].shape == (17, 2) and arch["beta"].shape == (2, 5, 2) and arch["gamma"].shape == (2, 2, 4)
    assert 0 < float(jnp.abs(arch["alpha"]).max()) < 1e-2  # 1e-3·N(0, 1)
    assert get_space("fusion").supernet is FusionSupernet


def _train_logits(variables, arch, inputs, sampler, key):
    logits, _ = FusionSupernet(CONFIG).apply(variables, inputs, arch, train=True, sampler=sampler, tau=1.0,
                                             mutable=["batch_stats"], rngs={"mask": jax.random.key(9), "gumbel": key})
    return np.asarray(logits)


def test_one_draw_is_shared_by_the_batch_unless_per_example(supernet):
    variables, arch = supernet
    row = _inputs(1)
    inputs = jnp.concatenate([row] * 4, axis=0)  # four copies of one example
    shared = _train_logits(variables, arch, inputs, SamplerConfig("gumbel_st"), jax.random.key(1))
    np.testing.assert_allclose(shared, np.broadcast_to(shared[:1], shared.shape), rtol=1e-6)
    per_example = _train_logits(variables, arch, inputs, SamplerConfig("gumbel_st", per_example_sample=True),
                                jax.random.key(1))
    assert not np.allclose(per_example, per_example[:1], rtol=1e-3)
    # Different keys draw different architectures; evaluation needs no key and mixes with softmax(α).
    other = _train_logits(variables, arch, inputs, SamplerConfig("gumbel_st"), jax.random.key(2))
    assert not np.allclose(shared, other)
    evaluated = FusionSupernet(CONFIG).apply(variables, inputs, arch, train=False, sampler=SamplerConfig("gumbel_st"))
    np.testing.assert_allclose(evaluated, FusionSupernet(CONFIG).apply(variables, inputs, arch, train=False))


@pytest.mark.parametrize("mode", ["softmax", "gumbel_st_mc"])
def test_the_loss_reaches_every_tap_row_of_alpha(supernet, mode):
    variables, arch = supernet
    inputs, labels = _inputs(8, seed=3), jnp.array([0, 1] * 4)
    sampler = None if mode == "softmax" else SamplerConfig(mode, sampler_samples=4)

    def loss(arch):
        logits, _ = FusionSupernet(CONFIG).apply(variables, inputs, arch, train=True, sampler=sampler, tau=1.0,
                                                 mutable=["batch_stats"],
                                                 rngs={"mask": jax.random.key(0), "gumbel": jax.random.key(5)})
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), labels[:, None], axis=1).mean()

    grads = jax.grad(loss)(arch)
    assert np.all(np.abs(np.asarray(grads["alpha"][:8, 1])) > 0)
    assert np.all(np.isfinite(np.asarray(grads["gamma"])))


def test_the_derived_network_reads_only_its_taps():
    genotype = parse_genotype_text("v2+a3: ConcatFC(x,y), Sum(x,s0) | v2+a4: ScaleDotAttn(x,y), LinearGLU(y,s0)",
                                   CONFIG)
    variables = init_network(0, CONFIG, genotype)
    assert {k for k in variables["params"] if k.startswith("reshape_")} == {"reshape_v2", "reshape_a3", "reshape_a4"}
    inputs = np.asarray(_inputs(4, seed=7))
    logits, _ = FusionNetwork(CONFIG, genotype).apply(variables, inputs, train=False)
    offsets = np.concatenate([[0], np.cumsum(CONFIG.tap_channels)])
    untouched = inputs.copy()
    for tap in ("v1", "v3", "v4", "a1", "a2"):
        i = CONFIG.taps.index(tap)
        untouched[..., offsets[i]:offsets[i + 1]] = 100.0
    np.testing.assert_allclose(FusionNetwork(CONFIG, genotype).apply(variables, untouched, train=False)[0], logits)
    a3 = CONFIG.taps.index("a3")
    touched = inputs.copy()
    touched[..., offsets[a3]:offsets[a3 + 1]] *= -1
    assert not np.allclose(FusionNetwork(CONFIG, genotype).apply(variables, touched, train=False)[0], logits)


def test_fusion_parameters_count_the_fusion_side_only():
    """Reshape (Dense C_in -> C with BatchNorm) per used tap, node ops, node outputs and the classifier."""
    config = dataclasses.replace(CONFIG, channels=4)
    genotype = parse_genotype_text("v1+a1: Sum(x,y), Sum(x,s0) | v1+a2: Sum(x,y), Sum(x,y)", config)
    c = config.channels
    reshape = sum((w + 1) * c + 2 * c for w in (3, 3, 4))  # v1, a1, a2: Dense + BatchNorm scale and bias
    node_output = 2 + (c + 1) * c + 2 * c + 2 * c * config.length  # ω, conv, BatchNorm, LayerNorm([C, L])
    classifier = 2 * (2 * c * config.length) + (2 * c * config.length + 1) * 2  # LayerNorm([2C, L]), Linear
    assert count_params(init_network(0, config, genotype)["params"]) == reshape + 2 * node_output + classifier
