"""Collapse diagnostics: the Hessian eigenvalue by power iteration against the full Hessian's spectrum,
and PC-DARTS' parameter-free counts and α entropy against their definitions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import collapse_diagnostics, derive_genotype
from darts_jax.tasks import diagnostics
from darts_jax.tasks.evaluate import batch_arrays
from darts_jax.tasks.search import _supernet_loss, init_search_state
from tests.engine.test_space_seam import TOY, VectorLoader, _search_config


def test_power_iteration_finds_the_dominant_eigenvalue_of_a_supernet_hessian():
    config = _search_config(2)
    state = init_search_state(TOY, config)
    batch = batch_arrays(next(iter(VectorLoader(3))))
    key = jax.random.key(0)

    with jax.enable_x64(True):
        state = jax.tree.map(lambda x: jnp.asarray(x, jnp.float64) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                             state)
        batch = {k: jnp.asarray(v, jnp.float64) if k == "inputs" else jnp.asarray(v) for k, v in batch.items()}
        # Sharpen α so that the Hessian is not near zero: the toy's softmax weights start almost uniform.
        arch = {"alphas": jnp.asarray([[1.5, -0.5], [-1.0, 0.8]], jnp.float64)}

        def loss(arch):
            return _supernet_loss(TOY, config, state.params, state.batch_stats, arch, batch, key)[0]

        flat, unravel = ravel_pytree(arch)
        full = np.asarray(jax.hessian(lambda v: loss(unravel(v)))(flat))
        spectrum = np.linalg.eigvalsh((full + full.T) / 2)
        expected = spectrum[np.argmax(np.abs(spectrum))]
        found = diagnostics.dominant_eigenvalue(jax.jit(diagnostics.hessian_vector_product(loss)), arch,
                                                jax.random.key(5), iterations=500, tolerance=1e-9)
    assert abs(expected) > 1e-4  # a Hessian worth the comparison
    np.testing.assert_allclose(found, expected, rtol=1e-3)


def test_pcdarts_collapse_figures_count_the_derived_cells_ops():
    rng = np.random.default_rng(0)
    arch = {f"alphas_{c}": rng.normal(size=(14, 8)) for c in ("normal", "reduce")}
    arch.update({f"betas_{c}": rng.normal(size=14) for c in ("normal", "reduce")})
    arch["alphas_normal"][:, PRIMITIVES.index("skip_connect")] += 10.0  # the collapse: skip wins every edge
    figures = collapse_diagnostics(arch)
    genotype = derive_genotype(arch)
    assert figures["normal_skip"] == figures["normal_parameter_free"] == 8
    reduce_ops = [op for op, _ in genotype.reduce]
    assert figures["reduce_pool"] == sum(op.endswith("pool_3x3") for op in reduce_ops)
    assert figures["reduce_parameter_free"] == sum(op in ("skip_connect", "max_pool_3x3", "avg_pool_3x3")
                                                   for op in reduce_ops)
    probs = np.exp(arch["alphas_reduce"]) / np.exp(arch["alphas_reduce"]).sum(1, keepdims=True)
    assert figures["reduce_alpha_entropy"] == pytest.approx(float((-(probs * np.log(probs)).sum(1)).mean()))
    assert figures["normal_alpha_entropy"] < 0.01 < figures["reduce_alpha_entropy"] < np.log(8)


def test_the_early_stop_rule_compares_window_means_of_the_eigenvalue():
    rule = diagnostics.early_stop_epoch
    grown = {0: 1.0, 1: 1.0, 2: 1.0, 3: 2.0, 4: 2.0, 5: 2.0}  # window 3: mean 1 then mean 2
    assert rule(grown, 5, 0.75, 3) == 2  # 1 / 2 < 0.75: the architecture of epoch 5 - 3
    assert rule(grown, 5, 0.4, 3) is None  # 1 / 2 is not under 0.4
    assert rule(grown, 4, 0.75, 3) is None  # epochs -1 .. 4 are not all there
    assert rule({e: v for e, v in grown.items() if e != 1}, 5, 0.75, 3) is None
    edge = {0: 3.0, 1: 4.0}  # 3 / 4 is not under 0.75
    assert rule(edge, 1, 0.75, 1) is None and rule(edge, 1, 0.76, 1) == 0
    assert rule({0: -1.0, 1: 2.0}, 1, 0.75, 1) is None  # a ratio of curvatures of either sign says nothing
