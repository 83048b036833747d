"""Collapse remedies, each changing the outcome only through its documented mechanism: P-DARTS' skip cap
at derivation, and β-DARTS' regulariser in the architecture gradient."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax.engine import config as config_lib
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES, ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import derive_genotype
from darts_jax.tasks.evaluate import batch_arrays
from darts_jax.tasks.search import arch_step, beta_decay_weight, init_search_state
from tests.engine.test_space_seam import TOY, VectorLoader, _search_config

SKIP = PRIMITIVES.index("skip_connect")


def _arch_with_three_skips():
    rng = np.random.default_rng(0)
    arch = {f"alphas_{c}": rng.normal(scale=0.1, size=(14, 8)) for c in ("normal", "reduce")}
    arch.update({f"betas_{c}": np.zeros(14) for c in ("normal", "reduce")})
    # Node 0's edges from s0 and s1 (rows 0, 1) and node 1's from s1 (row 3) prefer skip, by 3, 2 and 1;
    # their second choices are set too, so the outcome is known.
    for row, strength, second in ((0, 3.0, "sep_conv_3x3"), (1, 2.0, "dil_conv_5x5"), (3, 1.0, "max_pool_3x3")):
        arch["alphas_normal"][row, SKIP] = strength
        arch["alphas_normal"][row, PRIMITIVES.index(second)] = strength - 0.5
    arch["alphas_normal"][[2, 4], :] -= 2.0  # node 1's other edges are weak: it keeps rows 3 and a strong one
    arch["alphas_normal"][4, PRIMITIVES.index("sep_conv_5x5")] = 2.5
    return arch


def test_the_skip_cap_replaces_only_the_weakest_skips_by_their_edges_next_best_op():
    arch = _arch_with_three_skips()
    free = derive_genotype(arch)
    assert [op for op, _ in free.normal].count("skip_connect") == 3
    capped = derive_genotype(arch, max_skips=2)
    # The weakest skip (node 1, from s1: row 3) gives way to its edge's next op; nothing else changes.
    expected = tuple(("max_pool_3x3", 1) if edge == ("skip_connect", 1) and index in (2, 3) else edge
                     for index, edge in enumerate(free.normal))
    assert capped.normal == expected and capped.reduce == free.reduce
    assert [op for op, _ in derive_genotype(arch, max_skips=1).normal].count("skip_connect") == 1
    assert derive_genotype(arch, max_skips=8) == free


def test_the_cap_is_a_model_setting_that_does_not_change_shapes():
    with pytest.raises(ValueError, match="max_skips: 9 must be between 0"):
        ModelConfig(max_skips=9)
    from darts_jax.spaces.pcdarts2d.config import SHAPE_FIELDS
    assert "max_skips" not in SHAPE_FIELDS


def test_beta_decay_adds_its_gradient_to_the_architecture_step_and_ramps_after_warm_up():
    plain = config_lib.with_fields(_search_config(4), arch_weight_decay=0.0)
    remedied = config_lib.with_fields(plain, beta_decay=2.0)
    assert [beta_decay_weight(remedied, epoch) for epoch in range(4)] == [0.0, 2.0 / 3, 4.0 / 3, 2.0]
    state = init_search_state(TOY, plain)
    # α away from uniform (the optimiser's zero moments fit any α of this shape).
    state = state.replace(arch={"alphas": jnp.asarray([[0.5, -0.2], [1.0, 0.3]], jnp.float32)})
    batches = iter(VectorLoader(9))
    arch_batch, weight_batch = batch_arrays(next(batches)), batch_arrays(next(batches))

    def first_moment(config, weight):
        new_state, _ = arch_step(state, arch_batch, weight_batch, 0.05, weight, space=TOY, config=config)
        mu = optax.tree_utils.tree_get(new_state.opt_a, "mu")["alphas"]
        return np.asarray(mu, np.float64) / (1 - config.arch_betas[0])  # the gradient, after one Adam step

    extra = first_moment(remedied, 0.75) - first_moment(plain, 0.0)
    alphas = np.asarray(state.arch["alphas"], np.float64)
    softmax = np.exp(alphas) / np.exp(alphas).sum(axis=1, keepdims=True)
    # ∂/∂α of 0.75 · mean over the 2 edges of logsumexp(α_edge) = 0.75 · softmax(α) / 2.
    np.testing.assert_allclose(extra, 0.75 * softmax / 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(first_moment(remedied, 0.0), first_moment(plain, 0.0))
