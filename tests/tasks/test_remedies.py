"""Collapse remedies, each changing the outcome only through its documented mechanism: P-DARTS' skip cap
and Fair DARTS' σ(α) ranking at derivation, β-DARTS' and Fair DARTS' terms in the architecture gradient,
DARTS-' auxiliary skip in the supernet's op weights, and RobustDARTS' early stop on a planted eigenvalue
series (which ends the run and keeps the genotype of the epoch the rule names)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax.engine import config as config_lib
from darts_jax.relaxations import SamplerConfig, sigmoid_np
from darts_jax.spaces.pcdarts2d import SPACE
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES, ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import derive_genotype
from darts_jax.spaces.pcdarts2d.supernet import SearchNetwork, init_supernet, sampled_cell_weights
from darts_jax.tasks import search as search_lib
from darts_jax.tasks.evaluate import batch_arrays
from darts_jax.tasks.search import SearchConfig, arch_step, beta_decay_weight, init_search_state
from darts_jax.tasks.seed_search import SeedSearchConfig
from tests.engine.test_space_seam import TOY, VectorLoader, _search_config
from tests.tasks.test_loops import TINY_SUPERNET

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


TOY_ALPHAS = np.array([[0.5, -0.2], [1.0, 0.3]])


def _arch_gradient(config, weight=0.0):
    """The α gradient of one TOY architecture step (read from Adam's first moment), at α = TOY_ALPHAS
    (the optimiser's zero moments fit any α of this shape)."""
    state = init_search_state(TOY, config).replace(arch={"alphas": jnp.asarray(TOY_ALPHAS, jnp.float32)})
    batches = iter(VectorLoader(9))
    arch_batch, weight_batch = batch_arrays(next(batches)), batch_arrays(next(batches))
    new_state, _ = arch_step(state, arch_batch, weight_batch, 0.05, weight, space=TOY, config=config)
    mu = optax.tree_utils.tree_get(new_state.opt_a, "mu")["alphas"]
    return np.asarray(mu, np.float64) / (1 - config.arch_betas[0])


PLAIN = config_lib.with_fields(_search_config(4), arch_weight_decay=0.0)


def test_beta_decay_adds_its_gradient_to_the_architecture_step_and_ramps_after_warm_up():
    remedied = config_lib.with_fields(PLAIN, beta_decay=2.0)
    assert [beta_decay_weight(remedied, epoch) for epoch in range(4)] == [0.0, 2.0 / 3, 4.0 / 3, 2.0]
    extra = _arch_gradient(remedied, 0.75) - _arch_gradient(PLAIN)
    softmax = np.exp(TOY_ALPHAS) / np.exp(TOY_ALPHAS).sum(axis=1, keepdims=True)
    # ∂/∂α of 0.75 · mean over the 2 edges of logsumexp(α_edge) = 0.75 · softmax(α) / 2.
    np.testing.assert_allclose(extra, 0.75 * softmax / 2, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(_arch_gradient(remedied, 0.0), _arch_gradient(PLAIN))


def test_the_zero_one_loss_adds_its_gradient_to_the_architecture_step():
    extra = _arch_gradient(config_lib.with_fields(PLAIN, zero_one=10.0)) - _arch_gradient(PLAIN)
    s = 1.0 / (1.0 + np.exp(-TOY_ALPHAS))
    # ∂/∂α of 10 · -mean((σ(α) - 0.5)²) over the 4 logits.
    np.testing.assert_allclose(extra, 10.0 * -2 * (s - 0.5) * s * (1 - s) / 4, rtol=1e-4, atol=1e-6)


def _arch_where_sigmoid_and_softmax_disagree():
    """Node 1 of the normal cell (rows 2, 3, 4: from s0, s1, node 0), every other op and edge weak (-4):
    row 2 has two strong ops (3.0, which softmax splits, 0.499 each, and σ does not, 0.953), row 3 one
    op at 2.5 (softmax 0.990, σ 0.924), row 4 a pool at 2.0 (softmax 0.983, σ 0.881)."""
    arch = {f"alphas_{c}": np.full((14, 8), -4.0) for c in ("normal", "reduce")}
    arch.update({f"betas_{c}": np.zeros(14) for c in ("normal", "reduce")})
    arch["alphas_normal"][2, [PRIMITIVES.index("sep_conv_3x3"), PRIMITIVES.index("sep_conv_5x5")]] = 3.0
    arch["alphas_normal"][3, PRIMITIVES.index("dil_conv_3x3")] = 2.5
    arch["alphas_normal"][4, PRIMITIVES.index("avg_pool_3x3")] = 2.0
    return arch


def _pools(genotype):
    return sum(op in ("max_pool_3x3", "avg_pool_3x3") for op, _ in genotype.normal)


def test_fair_darts_derives_from_sigmoid_strengths_where_ops_do_not_compete():
    arch = _arch_where_sigmoid_and_softmax_disagree()
    softmax_genotype, sigmoid_genotype = derive_genotype(arch), derive_genotype(arch, op_weights=sigmoid_np)
    # Node 1 keeps its two strongest edges, strongest first: softmax rows 3 and 4, σ rows 2 and 3.
    assert softmax_genotype.normal[2:4] == (("dil_conv_3x3", 1), ("avg_pool_3x3", 2))
    assert sigmoid_genotype.normal[2:4] == (("sep_conv_3x3", 0), ("dil_conv_3x3", 1))
    assert softmax_genotype.normal[:2] + softmax_genotype.normal[4:] == \
        sigmoid_genotype.normal[:2] + sigmoid_genotype.normal[4:]
    assert softmax_genotype.reduce == sigmoid_genotype.reduce
    # The search derives, and counts the collapse figures, with the relaxation's own strengths.
    fair = SearchConfig(model=ModelConfig(), relaxation=SamplerConfig("fair_darts"))
    assert search_lib.derive_genotype(SPACE, fair, arch) == sigmoid_genotype
    assert search_lib.derive_genotype(SPACE, SearchConfig(model=ModelConfig()), arch) == softmax_genotype
    assert search_lib.arch_figures(SPACE, fair, arch)["normal_pool"] == _pools(sigmoid_genotype) == \
        _pools(softmax_genotype) - 1


def test_the_auxiliary_skip_adds_its_weight_to_every_edges_skip_and_nothing_else():
    arch = {k: jnp.asarray(v, jnp.float32) for k, v in _arch_where_sigmoid_and_softmax_disagree().items()}
    plain = sampled_cell_weights(None, arch, None, 1.0, 4, PRIMITIVES)
    auxiliary = sampled_cell_weights(None, arch, None, 1.0, 4, PRIMITIVES, aux_skip=0.3)
    skip = np.eye(len(PRIMITIVES))[PRIMITIVES.index("skip_connect")]
    for kind in ("normal", "reduce"):
        alphas = np.asarray(arch[f"alphas_{kind}"], np.float64)
        softmax = np.exp(alphas) / np.exp(alphas).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(np.asarray(auxiliary[kind][0]), softmax + 0.3 * skip, rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(np.asarray(auxiliary[kind][1]), np.asarray(plain[kind][1]))  # β untouched
    with pytest.raises(ValueError, match="skip_connect"):
        sampled_cell_weights(None, arch, None, 1.0, 4, ("none", "max_pool_3x3"), aux_skip=0.3)


def test_the_supernet_with_a_zero_auxiliary_skip_is_the_plain_one_and_a_positive_one_moves_it():
    variables, arch = init_supernet(0, TINY_SUPERNET)
    wave = 0.1 * jax.random.normal(jax.random.key(1), (2, TINY_SUPERNET.num_samples))
    net = SearchNetwork(TINY_SUPERNET)
    plain, zero, half = (np.asarray(net.apply(variables, wave, arch, train=False, aux_skip=aux))
                         for aux in (None, 0.0, 0.5))
    np.testing.assert_allclose(zero, plain, rtol=1e-6, atol=1e-7)
    assert np.abs(half - plain).max() > 1e-3


def test_remedy_settings_are_checked_by_name():
    with pytest.raises(ValueError, match=r"aux_skip \(--aux-skip\): -1"):
        config_lib.with_fields(PLAIN, aux_skip=-1.0)
    with pytest.raises(ValueError, match=r"hessian_every \(--hessian-every\).*set it to 1"):
        config_lib.with_fields(PLAIN, early_stop_ratio=0.75, hessian_every=2)
    with pytest.raises(ValueError, match=r"early_stop_ratio \(--early-stop-ratio\): 1.5"):
        config_lib.with_fields(PLAIN, early_stop_ratio=1.5)
    with pytest.raises(ValueError, match="no Hessian monitor"):
        SeedSearchConfig(config_lib.with_fields(PLAIN, early_stop_ratio=0.75))
    with pytest.raises(ValueError, match="space 'toy-mlp' has no auxiliary skip"):
        search_lib.check_sampler_support(TOY, config_lib.with_fields(PLAIN, aux_skip=1.0))


# ------------------------------------------------------------------------------ RobustDARTS early stop

EPOCH_STEPS = 4  # VectorLoader's


def _planted_search(workdir, monkeypatch, eigenvalues):
    """A TOY search of 8 epochs (warm-up 1) whose Hessian monitor reads `eigenvalues[epoch]`, with the
    early stop at ratio 0.75 over windows of 2 epochs."""
    def monitor(space, config, arch_loader):
        return lambda state: eigenvalues[int(state.step) // EPOCH_STEPS - 1]

    monkeypatch.setattr(search_lib, "_hessian_monitor", monitor)
    config = config_lib.with_fields(_search_config(8), early_stop_ratio=0.75, early_stop_window=2)
    return search_lib.search(TOY, config, VectorLoader(0), VectorLoader(1), workdir, quiet=True)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_early_stop_ends_the_search_where_the_curvature_grows_and_keeps_the_earlier_genotype(tmp_path,
                                                                                                 monkeypatch):
    # Epoch 0 is warm-up (its eigenvalue is not read). Windows of 2: at epoch 4 the mean of epochs 3, 4
    # (2.5) is 2.5 x that of epochs 1, 2 (1.0): 1.0 / 2.5 < 0.75, so the search ends there, with the
    # genotype of the end of epoch 2 (logged at the start of epoch 3).
    eigenvalues = [50.0, 1.0, 1.0, 1.0, 4.0, 9.0, 9.0, 9.0]
    result = _planted_search(tmp_path, monkeypatch, eigenvalues)
    assert result.step == 5 * EPOCH_STEPS and not result.interrupted
    epochs = _lines(tmp_path / "epochs.jsonl")
    assert [r["epoch"] for r in epochs] == [0, 1, 2, 3, 4]
    logged = {r["epoch"]: r["genotype"] for r in _lines(tmp_path / "genotypes.jsonl")}
    assert json.loads((tmp_path / "genotype.json").read_text()) == logged[3]
    assert result.genotype == tuple(logged[3]["ops"])
    # Run again: the run is finished, nothing more is trained or logged.
    metrics = (tmp_path / "metrics.jsonl").read_text()
    again = _planted_search(tmp_path, monkeypatch, eigenvalues)
    assert again.step == result.step and again.genotype == result.genotype
    assert (tmp_path / "metrics.jsonl").read_text() == metrics


def test_a_search_whose_curvature_stays_flat_runs_to_the_end(tmp_path, monkeypatch):
    # The largest rise, epochs 4-5 against 2-3, is (1.2 + 1.3) / (1.0 + 1.1) = 1.19 x < 1 / 0.75.
    result = _planted_search(tmp_path, monkeypatch, [9.0, 1.0, 1.0, 1.1, 1.2, 1.3, 1.3, 1.2])
    assert result.step == 8 * EPOCH_STEPS
    assert len(_lines(tmp_path / "epochs.jsonl")) == 8
