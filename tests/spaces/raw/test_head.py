"""The PyTorch GRU against a NumPy GRU, and P2SGrad (output, loss, gradients) against hand computations."""
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.engine.steps import global_loss
from darts_jax.spaces.raw.head import GRU, P2SGradOutput, gru_cell, p2sgrad_terms


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_gru_step(x, h, w_ih, w_hh, b_ih, b_hh):
    """torch.nn.GRU's equations, with PyTorch's (3H, in) weights, gates r, z, n."""
    H = h.shape[-1]
    W_ir, W_iz, W_in = w_ih[:H], w_ih[H:2 * H], w_ih[2 * H:]
    W_hr, W_hz, W_hn = w_hh[:H], w_hh[H:2 * H], w_hh[2 * H:]
    b_ir, b_iz, b_in = b_ih[:H], b_ih[H:2 * H], b_ih[2 * H:]
    b_hr, b_hz, b_hn = b_hh[:H], b_hh[H:2 * H], b_hh[2 * H:]
    r = _sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
    z = _sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
    n = np.tanh(x @ W_in.T + b_in + r * (h @ W_hn.T + b_hn))
    return (1 - z) * n + z * h


def test_gru_cell_follows_pytorch():
    rng = np.random.default_rng(0)
    B, D, H = 3, 4, 5
    x, h = rng.standard_normal((B, D)), rng.standard_normal((B, H))
    w_ih, w_hh = rng.standard_normal((3 * H, D)), rng.standard_normal((3 * H, H))
    b_ih, b_hh = rng.standard_normal(3 * H), rng.standard_normal(3 * H)
    got = gru_cell(jnp.asarray(h, jnp.float32), jnp.asarray(x @ w_ih.T + b_ih, jnp.float32),
                   jnp.asarray(w_hh.T, jnp.float32), jnp.asarray(b_hh, jnp.float32))
    np.testing.assert_allclose(got, numpy_gru_step(x, h, w_ih, w_hh, b_ih, b_hh), atol=1e-5)


def test_stacked_gru_matches_a_numpy_loop():
    rng = np.random.default_rng(1)
    B, T, D, H, L = 2, 6, 4, 3, 2
    x = rng.standard_normal((B, T, D)).astype(np.float32)
    gru = GRU(H, L)
    params = jax.tree.map(np.asarray, gru.init(jax.random.key(0), x)["params"])
    # PyTorch's layout: 6H biases per layer, weights of every layer U(±1/√H).
    assert {k: v.shape for k, v in params.items()} == {
        "weight_ih_l0": (D, 3 * H), "weight_hh_l0": (H, 3 * H), "bias_ih_l0": (3 * H,), "bias_hh_l0": (3 * H,),
        "weight_ih_l1": (H, 3 * H), "weight_hh_l1": (H, 3 * H), "bias_ih_l1": (3 * H,), "bias_hh_l1": (3 * H,)}
    assert max(np.abs(v).max() for v in params.values()) <= 1 / np.sqrt(H)
    got = gru.apply({"params": params}, x)
    seq = x.astype(np.float64)
    for layer in range(L):
        h, outs = np.zeros((B, H)), []
        for t in range(T):
            h = numpy_gru_step(seq[:, t], h, params[f"weight_ih_l{layer}"].T, params[f"weight_hh_l{layer}"].T,
                               params[f"bias_ih_l{layer}"], params[f"bias_hh_l{layer}"])
            outs.append(h)
        seq = np.stack(outs, axis=1)
    np.testing.assert_allclose(got, seq, atol=1e-5)


def _p2s(x, w):
    return P2SGradOutput(2).apply({"params": {"weight": w}}, x)


def test_p2sgrad_output_loss_and_gradients_by_hand():
    rng = np.random.default_rng(2)
    B, D = 4, 5
    x = rng.standard_normal((B, D))
    w = rng.standard_normal((D, 2)) * 3
    labels = np.array([0, 1, 1, 0])
    # cos θ with unit columns w_j / (‖w_j‖ + 1e-7).
    norm_w = np.linalg.norm(w, axis=0)
    w_hat = w / (norm_w + 1e-7)
    norm_x = np.linalg.norm(x, axis=1, keepdims=True)
    cos = x @ w_hat / norm_x
    np.testing.assert_allclose(_p2s(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)), cos, atol=1e-6)
    target = np.eye(2)[labels]
    loss = ((cos - target) ** 2).sum() / (B * 2)

    def jax_loss(x, w):
        return global_loss(p2sgrad_terms, _p2s(x, w), jnp.asarray(labels), (1.0, 9.0))  # weights ignored

    x32, w32 = jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32)
    np.testing.assert_allclose(jax_loss(x32, w32), loss, rtol=1e-6)
    grad_x, grad_w = jax.grad(jax_loss, argnums=(0, 1))(x32, w32)
    d_cos = 2 * (cos - target) / (B * 2)
    # ∂cos_bj/∂x_b = ŵ_j/‖x_b‖ − cos_bj·x_b/‖x_b‖²
    expected_x = d_cos @ w_hat.T / norm_x - (d_cos * cos).sum(1, keepdims=True) * x / norm_x ** 2
    np.testing.assert_allclose(grad_x, expected_x, atol=1e-6)
    # ∂ŵ_j/∂w_j = I/(n + ε) − w_j w_jᵀ/((n + ε)² n)
    g_hat = (x / norm_x).T @ d_cos  # ∂L/∂ŵ
    expected_w = np.stack([g_hat[:, j] / (norm_w[j] + 1e-7)
                           - w[:, j] * (w[:, j] @ g_hat[:, j]) / ((norm_w[j] + 1e-7) ** 2 * norm_w[j])
                           for j in range(2)], axis=1)
    np.testing.assert_allclose(grad_w, expected_w, atol=1e-6)


def test_p2sgrad_small_columns_and_zero_embeddings_stay_finite():
    w = np.array([[1e-7, 3.0], [0.0, 4.0]], np.float32)  # column 0 at or below 1e-5: multiplied by 1e5
    x = np.array([[1.0, 0.0], [0.0, 0.0]], np.float32)
    cos = np.asarray(_p2s(x, w))
    np.testing.assert_allclose(cos[0], [1e-7 * 1e5, 0.6], rtol=1e-5)
    np.testing.assert_array_equal(cos[1], [0.0, 0.0])
    grad = jax.grad(lambda x: _p2s(x, w).sum())(jnp.asarray(x))
    assert np.all(np.isfinite(grad))
