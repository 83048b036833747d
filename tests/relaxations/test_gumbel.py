"""The Gumbel samplers against NumPy references and Monte-Carlo checks of their estimator claims.

Monte-Carlo checks fix their keys and bound differences by the standard error they measure, so they are
deterministic and fail only for a real difference of means or ordering of variances.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from darts_jax.engine.config import from_dict, to_dict
from darts_jax.relaxations import SamplerConfig, sample_arch_weights, temperature_schedule
from darts_jax.relaxations.gumbel import MODES, conditional_gumbels

LOGITS = np.array([[2.0, 0.0, 0.0, -2.0], [0.3, -0.4, 1.1, 0.0]], np.float32)


def _softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _draws(mode, keys, logits=LOGITS, tau=1.0, num_samples=1):
    return jax.vmap(lambda k: sample_arch_weights(k, jnp.asarray(logits), tau, mode, num_samples))(keys)


# ------------------------------------------------------------------------------ the samplers' values

def test_gumbel_soft_is_softmax_of_perturbed_log_probabilities():
    key, tau = jax.random.key(3), 0.7
    gumbels = np.asarray(jax.random.gumbel(key, (1, *LOGITS.shape)))[0]
    log_probs = LOGITS - np.log(np.exp(LOGITS).sum(-1, keepdims=True))
    np.testing.assert_allclose(sample_arch_weights(key, LOGITS, tau, "gumbel_soft"),
                               _softmax((log_probs + gumbels) / tau), rtol=1e-5, atol=1e-6)


def test_softmax_mode_is_deterministic_softmax_at_temperature():
    for key in (jax.random.key(0), jax.random.key(1)):
        np.testing.assert_allclose(sample_arch_weights(key, LOGITS, 2.0, "softmax"), _softmax(LOGITS / 2.0),
                                   rtol=1e-6)


def test_gumbel_st_is_exactly_one_hot_with_the_soft_samples_gradient():
    tau, coefficients = 0.5, jnp.asarray(np.random.default_rng(0).standard_normal(LOGITS.shape), jnp.float32)
    for seed in range(20):
        key = jax.random.key(seed)
        hard = np.asarray(sample_arch_weights(key, LOGITS, tau, "gumbel_st"))
        soft = np.asarray(sample_arch_weights(key, LOGITS, tau, "gumbel_soft"))  # same key, same noise
        assert set(np.unique(hard)) <= {0.0, 1.0} and (hard.sum(-1) == 1).all()
        np.testing.assert_array_equal(hard.argmax(-1), soft.argmax(-1))

        def linear(mode, logits):
            return jnp.sum(coefficients * sample_arch_weights(key, logits, tau, mode))

        np.testing.assert_allclose(jax.grad(lambda a: linear("gumbel_st", a))(jnp.asarray(LOGITS)),
                                   jax.grad(lambda a: linear("gumbel_soft", a))(jnp.asarray(LOGITS)), rtol=1e-6,
                                   atol=1e-7)


def test_gumbel_st_mc_forward_is_the_frequency_of_its_hard_draws():
    weights = np.asarray(sample_arch_weights(jax.random.key(5), LOGITS, 1.0, "gumbel_st_mc", 15))
    counts = weights * 15
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-5)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert (np.count_nonzero(weights, -1) <= 15).all()


def test_gumbel_soft_argmax_frequencies_match_softmax_over_20k_draws():
    draws = np.asarray(_draws("gumbel_soft", jax.random.split(jax.random.key(11), 20_000), tau=3.0))
    probs = _softmax(LOGITS)
    for edge in range(len(LOGITS)):
        counts = np.bincount(draws[:, edge].argmax(-1), minlength=LOGITS.shape[1])
        np.testing.assert_allclose(counts / len(draws), probs[edge], atol=0.02)
        assert stats.chisquare(counts, probs[edge] * len(draws)).pvalue > 1e-3


def test_per_example_draws_are_independent_and_follow_softmax():
    per_example = np.asarray(sample_arch_weights(jax.random.key(2), LOGITS, 1.0, "gumbel_st", batch_size=4000))
    assert per_example.shape == (4000, *LOGITS.shape)
    choices = per_example.argmax(-1)
    assert len({tuple(row) for row in choices[:50]}) > 1  # not one draw repeated
    for edge in range(len(LOGITS)):
        np.testing.assert_allclose(np.bincount(choices[:, edge], minlength=4) / 4000, _softmax(LOGITS)[edge],
                                   atol=0.03)


def test_soft_sample_entropy_falls_with_temperature():
    keys = jax.random.split(jax.random.key(4), 2000)
    entropies = []
    for tau in (10.0, 3.0, 1.0, 0.3, 0.1):
        w = np.asarray(_draws("gumbel_soft", keys, tau=tau), np.float64)
        entropies.append(float(-(w * np.log(np.clip(w, 1e-30, None))).sum(-1).mean()))
    assert all(a > b for a, b in zip(entropies, entropies[1:])), entropies


def test_every_mode_keeps_shape_and_is_reproducible_from_its_key():
    for mode in MODES:
        m = 3 if mode in ("gumbel_st_mc", "gumbel_rao", "stgs_repo_compat") else 1
        a = sample_arch_weights(jax.random.key(7), LOGITS, 2.0, mode, m)
        b = sample_arch_weights(jax.random.key(7), LOGITS, 2.0, mode, m)
        assert a.shape == LOGITS.shape
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode, samples, message", [("gumble_st", 1, "not a sampler mode"),
                                                    ("gumbel_st", 15, "draws one sample"),
                                                    ("gumbel_rao", 0, "at least 1")])
def test_bad_sampler_arguments_are_refused_by_name(mode, samples, message):
    with pytest.raises(ValueError, match=message):
        sample_arch_weights(jax.random.key(0), LOGITS, 1.0, mode, samples)


# ------------------------------------------------------------------------------ Rao-Blackwellisation

def test_conditional_gumbels_keep_the_argmax_and_match_rejection_sampling():
    theta = jnp.asarray(np.log(_softmax(LOGITS[:1])))
    chosen = jnp.array([1])  # an unlikely op (p = 0.10), where the condition matters most
    z = np.asarray(conditional_gumbels(jax.random.key(0), theta, chosen, 40_000))[:, 0]
    assert (z.argmax(-1) == 1).all()
    free = np.asarray(theta)[0] + np.random.default_rng(0).gumbel(size=(400_000, 4))
    accepted = free[free.argmax(-1) == 1]
    assert len(accepted) > 30_000
    np.testing.assert_allclose(z.mean(0), accepted.mean(0), atol=0.02)
    np.testing.assert_allclose(z.std(0), accepted.std(0), atol=0.02)


def _gradients(mode, num_samples, seed, draws=3000, tau=1.0):
    """Per-draw gradients (draws, K) w.r.t. the logits of f(w) = |w - t|² on one edge: not linear in the
    forward value, so the estimators' use of the hard sample matters."""
    logits, target = jnp.asarray(LOGITS[:1]), jnp.array([[0.0, 1.0, 0.0, 0.5]])

    def loss(a, key):
        return jnp.sum((sample_arch_weights(key, a, tau, mode, num_samples) - target) ** 2)

    keys = jax.random.split(jax.random.fold_in(jax.random.key(seed), num_samples), draws)
    return np.asarray(jax.vmap(jax.grad(loss), (None, 0))(logits, keys))[:, 0].astype(np.float64)


def _variance(grads):
    return float(grads.var(0, ddof=1).sum())


def test_gumbel_rao_has_gumbel_st_mean_and_lower_variance_over_seeds():
    # Precondition: at τ = 1 on these logits the straight-through gradient is noisy (variance well above 0),
    # so a reduction can show; at M = 1 Rao-Blackwellisation is gumbel_st itself, so M is 15.
    for seed in range(5):
        st, rao = _gradients("gumbel_st", 1, seed), _gradients("gumbel_rao", 15, 100 + seed)
        assert _variance(st) > 0.01
        standard_error = np.sqrt(st.var(0) / len(st) + rao.var(0) / len(rao))
        assert (np.abs(st.mean(0) - rao.mean(0)) < 4 * standard_error + 1e-6).all(), seed
        assert _variance(rao) < 0.8 * _variance(st), (seed, _variance(rao), _variance(st))


def test_gumbel_st_mc_variance_falls_with_the_number_of_samples():
    for seed in range(3):
        variances = [_variance(_gradients("gumbel_st_mc", m, seed)) for m in (1, 5, 15)]
        assert variances[0] > variances[1] > variances[2], (seed, variances)


# ------------------------------------------------------------------------------ the public STGS code

def test_stgs_repo_compat_is_the_closed_form_of_the_public_recursion():
    """softmax(α/λ^M + Σ_m g_m/λ^(M-m+1)) with the code's noise -log(-log(u + 1e-20) + 1e-20), in float64."""
    with jax.enable_x64(True):
        alpha, key = np.array([[2.0, 0.0, 0.0, -2.0]]), jax.random.key(9)
        for lam, m in ((10.0, 1), (2.0, 3), (1.5, 6)):
            uniforms = [np.asarray(jax.random.uniform(k, alpha.shape, jnp.float64)) for k in jax.random.split(key, m)]
            noise = [-np.log(-np.log(u + 1e-20) + 1e-20) for u in uniforms]
            closed = alpha / lam ** m + sum(g / lam ** (m - i) for i, g in enumerate(noise))
            np.testing.assert_allclose(sample_arch_weights(key, jnp.asarray(alpha), lam, "stgs_repo_compat", m),
                                       _softmax(closed), rtol=1e-12)
            # ∂(log w_0 - log w_1)/∂α_0 is exactly the α scale λ^-M.
            scale = jax.grad(lambda a: jnp.diff(jnp.log(sample_arch_weights(
                key, a, lam, "stgs_repo_compat", m))[0, :2])[0])(jnp.asarray(alpha))[0, 0]
            np.testing.assert_allclose(-scale, lam ** -m, rtol=1e-9)


def test_stgs_repo_compat_is_degenerate_at_the_papers_best_setting():
    keys = jax.random.split(jax.random.key(1), 4000)
    alpha = jnp.asarray(LOGITS[:1])
    jac = jax.vmap(jax.jacobian(lambda a, k: sample_arch_weights(k, a, 10.0, "stgs_repo_compat", 15)),
                   (None, 0))(alpha, keys)
    assert float(np.abs(np.asarray(jac)[:, 0, 0, 0, 0]).max()) < 1e-10
    choices = np.asarray(_draws("stgs_repo_compat", keys, LOGITS[:1], 10.0, 15))[:, 0].argmax(-1)
    counts = np.bincount(choices, minlength=4)
    assert stats.chisquare(counts).pvalue > 1e-3  # uniform, although softmax(α)_0 is 0.77


# ------------------------------------------------------------------------------ schedules and config

def test_temperature_schedules_against_their_formulas():
    epochs = 50
    steps = np.arange(epochs)
    linear = np.array([float(temperature_schedule(e, epochs, "linear", 10.0, 0.1)) for e in steps])
    np.testing.assert_allclose(linear, 10.0 - 9.9 * steps / (epochs - 1), rtol=1e-5)  # GDAS' τ_e
    exponential = np.array([float(temperature_schedule(e, epochs, "exponential", 5.0, 0.05)) for e in steps])
    np.testing.assert_allclose(exponential, 5.0 * 0.01 ** (steps / (epochs - 1)), rtol=1e-5)
    assert float(temperature_schedule(70, epochs, "linear", 10.0, 0.1)) == pytest.approx(0.1)
    assert float(temperature_schedule(3, epochs, "constant", 10.0, 0.1)) == 10.0
    traced = jax.jit(lambda s: temperature_schedule(s, epochs, "linear", 10.0, 0.1))(jnp.int32(7))
    assert float(traced) == pytest.approx(linear[7])
    with pytest.raises(ValueError, match="not known"):
        temperature_schedule(0, epochs, "cosine")


def test_sampler_config_presets_round_trip_and_errors():
    gdas = SamplerConfig("gdas")
    assert gdas.resolved == ("gumbel_st", 1, "linear", 10.0, 0.1) and gdas.skips_unselected_ops
    assert gdas.tau(0, 50) == pytest.approx(10.0) and gdas.tau(49, 50) == pytest.approx(0.1)
    assert SamplerConfig("gumbel_rao").resolved == ("gumbel_rao", 15, "constant", 10.0, 10.0)
    assert SamplerConfig("gdas", tau_start=5.0).resolved[3:] == (5.0, 0.1)
    assert SamplerConfig("gumbel_rao", tau_start=2.0).resolved[3:] == (2.0, 2.0)
    assert not SamplerConfig("gdas", per_example_sample=True).skips_unselected_ops
    assert not SamplerConfig("snas").skips_unselected_ops
    config = SamplerConfig("gumbel_st_mc", sampler_samples=5, tau_schedule="exponential", tau_end=0.5)
    assert from_dict(SamplerConfig, to_dict(config)) == config
    with pytest.raises(ValueError, match="sampler_samples"):
        SamplerConfig("gdas", sampler_samples=4)
    with pytest.raises(ValueError, match=r"sampler \(--sampler\)"):
        SamplerConfig("gdsa")
    with pytest.raises(ValueError, match="tau_start"):
        SamplerConfig("snas", tau_start=0.0)
