"""The supernet: parameter parity with the authors' (spec §2.4), cell plan, α/β and differentiability."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES, ModelConfig
from darts_jax.spaces.pcdarts2d.supernet import SearchNetwork, count_supernet_params, init_arch, init_supernet
from darts_jax.spaces.pcdarts2d.skeleton import cell_plan

def _supernet_weight_formula(layers, c, k):
    """Trainable weights of the search supernet from spec §2.1-2.4, written out independently.

    Stems on 3C channels with affine BN; per cell 1x1 preprocessing of s0 and s1 (no BN params);
    every edge's ops act on C_cur/K channels with BN affine=False: sep_k 2(k²m + m²), dil_k k²m + m²,
    pools and identity 0, and on the 8 strided edges of a reduction cell skip is a FactorizedReduce (m²).
    """
    cs = 3 * c
    total = 9 * (cs // 2) + 2 * (cs // 2) + 9 * (cs // 2) * cs + 2 * cs + 9 * cs * cs + 2 * cs
    c_pp, c_p, c_cur = cs, cs, c
    for i in range(layers):
        reduction = i in (layers // 3, 2 * layers // 3)
        if reduction:
            c_cur *= 2
        m = c_cur // k
        per_edge = 2 * (9 * m + m * m) + 2 * (25 * m + m * m) + (9 * m + m * m) + (25 * m + m * m)
        strided_edges = 2 * 4 if reduction else 0  # edges from s0 and s1 into each of the 4 nodes
        total += (c_pp + c_p) * c_cur + 14 * per_edge + strided_edges * m * m
        c_pp, c_p = c_p, 4 * c_cur
    return total + 4 * c_cur * 2 + 2


# ------------------------------------------------------------------------------ parameter counts

def test_supernet_parameter_parity_with_authors():
    # Spec §2.4 [D]: 4 layers / 16 channels, K = 2 -> 408,874 weights; α, β: 2x(14x8) + 2x14 = 252.
    assert count_supernet_params(ModelConfig(layers=4, init_channels=16, partial_k=2)) == (408_874, 252)
    assert _supernet_weight_formula(4, 16, 2) == 408_874


def test_supernet_parameter_parity_8_32():
    assert count_supernet_params(ModelConfig(layers=8, init_channels=32, partial_k=2))[0] == 2_339_474


@pytest.mark.parametrize("partial_k", [1, 4])
def test_supernet_parameter_count_other_k(partial_k):
    weights, arch_values = count_supernet_params(ModelConfig(layers=4, init_channels=16, partial_k=partial_k))
    assert weights == _supernet_weight_formula(4, 16, partial_k)
    assert arch_values == 2 * 14 * len(PRIMITIVES) + 2 * 14


# ------------------------------------------------------------------------------------ cell plan

@pytest.mark.parametrize("layers,reductions", [(4, (1, 2)), (8, (2, 5)), (16, (5, 10)), (3, (1, 2)), (2, (0, 1))])
def test_cell_plan_reduction_cells(layers, reductions):
    plan = cell_plan(layers, 16)
    assert [i for i, cell in enumerate(plan) if cell.reduction] == sorted(set(reductions))
    channels, reduction_prev = 16, True
    for cell in plan:
        channels *= 2 if cell.reduction else 1
        assert cell.channels == channels
        assert cell.reduction_prev == reduction_prev
        reduction_prev = cell.reduction


def test_cell_plan_all_lengths():
    for layers in range(1, 21):
        plan = cell_plan(layers, 8)
        assert len(plan) == layers
        assert {i for i, cell in enumerate(plan) if cell.reduction} == {layers // 3, 2 * layers // 3}


# ---------------------------------------------------------------------------- α, β and weights

def test_init_arch_shapes_and_scale():
    arch = init_arch(jax.random.key(0), 8)
    assert {name: a.shape for name, a in arch.items()} == {
        "alphas_normal": (14, 8), "alphas_reduce": (14, 8), "betas_normal": (14,), "betas_reduce": (14,)}
    values = np.concatenate([np.ravel(a) for a in arch.values()])
    # 252 draws of 1e-3·N(0, 1): the sample std is within ±20 % (about 4.5 standard errors).
    assert 0.8e-3 < values.std() < 1.2e-3
    assert abs(values.mean()) < 4 * 1e-3 / np.sqrt(values.size)
    assert not np.allclose(arch["alphas_normal"], arch["alphas_reduce"])
    assert not np.allclose(arch["betas_normal"], arch["betas_reduce"])
    other = init_arch(jax.random.key(1), 8)
    assert not np.allclose(other["alphas_normal"], arch["alphas_normal"])
    assert init_arch(jax.random.key(0), 5)["alphas_reduce"].shape == (14, 5)


# ------------------------------------------------------------------------------ differentiability

@pytest.mark.parametrize("partial_k", [1, 2, 4])
def test_supernet_is_differentiable_in_weights_and_architecture(partial_k):
    # layers=3: cell 0 is normal and cells 1, 2 reduce, so both α sets are used. Compiling the gradient
    # dominates this test; evaluating it eagerly op by op was slower still (measured), and so was
    # compiling the three K side by side in threads. The grouped depthwise lowering compiles ~25 %
    # faster on CPU than the dense one, and test_layers proves the two equal.
    config = ModelConfig(frontend="lfcc", layers=3, init_channels=8, partial_k=partial_k, num_samples=4096,
                         depthwise="grouped")
    variables, arch = init_supernet(0, config)
    net = SearchNetwork(config)
    wave = jnp.asarray(np.random.default_rng(1).normal(size=(2, config.num_samples)) * 0.1, jnp.float32)
    labels = jnp.array([0, 1])

    def loss_fn(params, arch):
        logits, _ = net.apply({**variables, "params": params}, wave, arch, train=True, mutable=["batch_stats"])
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    weight_grads, arch_grads = jax.jit(jax.grad(loss_fn, argnums=(0, 1)))(variables["params"], arch)
    for name in ("alphas_normal", "alphas_reduce"):
        grad = np.asarray(arch_grads[name])
        assert grad.shape == (14, len(PRIMITIVES))
        assert np.all(np.isfinite(grad)), name
        assert np.all(np.abs(grad).sum(axis=1) > 0), f"{name}: rows without gradient {np.abs(grad).sum(axis=1)}"
    for name in ("betas_normal", "betas_reduce"):
        grad = np.asarray(arch_grads[name])
        assert np.all(np.isfinite(grad)) and np.all(grad != 0), f"{name}: {grad}"
    leaves = jax.tree_util.tree_leaves_with_path(weight_grads)
    assert all(np.all(np.isfinite(leaf)) for _, leaf in leaves)
    dead = [jax.tree_util.keystr(path) for path, leaf in leaves if not np.any(leaf)]
    assert not dead, f"weights without gradient: {dead}"
