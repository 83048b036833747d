"""Optimisers: PyTorch's Adam with coupled L2 and the per-epoch cosine schedule (spec §5.2, §10)."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.engine.optim import apply_updates, cosine_lr, coupled_adam, weight_optimizer
from darts_jax.tasks.search import SearchConfig, arch_optimizer
from darts_jax.tasks.train import TrainConfig

STEP_LRS = (1e-2, 7e-3, 4e-3)  # a different rate each step, as the schedule gives at epoch boundaries


def _toy_params(rng):
    return {
        "kernel": rng.standard_normal((3, 2)),
        # Large weights with small gradients: coupled L2 (wd·p inside Adam) and AdamW disagree most here.
        "decay_dominated": 10 + rng.standard_normal(4),
        # Gradients near Adam's eps: only the exact placement of eps gives the right step.
        "tiny_grads": 1e-6 * rng.standard_normal(2),
    }


def _toy_grads(rng):
    return {"kernel": rng.standard_normal((3, 2)), "decay_dominated": 1e-4 * rng.standard_normal(4),
            "tiny_grads": 1e-8 * rng.standard_normal(2)}


def _torch_adam(params, grads_per_step, lrs, weight_decay, b1, b2, eps):
    """torch.optim.Adam(lr, betas, eps, weight_decay).step() written out in float64 NumPy."""
    params = {k: np.array(v, np.float64) for k, v in params.items()}
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    for t, (grads, lr) in enumerate(zip(grads_per_step, lrs), start=1):
        for k in params:
            g = grads[k] + weight_decay * params[k]
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            m_hat = m[k] / (1 - b1**t)
            v_hat = v[k] / (1 - b2**t)
            params[k] = params[k] - lr * m_hat / (np.sqrt(v_hat) + eps)
    return params


@pytest.mark.parametrize("make_optimizer,weight_decay,b1", [
    (lambda: coupled_adam(0.1), 0.1, 0.9),
    # The run's optimisers must carry the spec's hyperparameters (§5.2), written out here.
    (lambda: weight_optimizer(SearchConfig(model=None).optim), 3e-4, 0.9),
    (lambda: weight_optimizer(TrainConfig(model=None).optim), 3e-4, 0.9),
    (lambda: arch_optimizer(SearchConfig(model=None)), 1e-3, 0.5),
], ids=["coupled_adam", "search_weights", "train_weights", "search_arch"])
def test_steps_match_pytorch_adam_with_l2(make_optimizer, weight_decay, b1):
    rng = np.random.default_rng(0)
    params0 = _toy_params(rng)
    grads_per_step = [_toy_grads(rng) for _ in STEP_LRS]
    expected = _torch_adam(params0, grads_per_step, STEP_LRS, weight_decay, b1, b2=0.999, eps=1e-8)
    # float64 so that a tolerance near machine precision separates formulas, not rounding.
    with jax.enable_x64(True):
        tx = make_optimizer()
        params = jax.tree.map(jnp.asarray, params0)
        opt_state = tx.init(params)
        for grads, lr in zip(grads_per_step, STEP_LRS):
            updates, opt_state = tx.update(jax.tree.map(jnp.asarray, grads), opt_state, params)
            params = apply_updates(params, updates, lr)
        params = jax.device_get(params)
    for name, value in params.items():
        assert value.dtype == np.float64
        np.testing.assert_allclose(value, expected[name], rtol=1e-12, atol=1e-18, err_msg=name)


def test_cosine_schedule_hand_values():
    # CosineAnnealingLR(T_max=50, eta_min=1e-3) from 1e-2: cos(π/5) = (1 + √5)/4.
    assert cosine_lr(0, 50, 1e-2, 1e-3) == pytest.approx(1e-2, rel=1e-12)
    assert cosine_lr(10, 50, 1e-2, 1e-3) == pytest.approx(1e-3 + 9e-3 * (1 + (1 + math.sqrt(5)) / 4) / 2, rel=1e-12)
    assert cosine_lr(25, 50, 1e-2, 1e-3) == pytest.approx(5.5e-3, rel=1e-12)
    assert cosine_lr(50, 50, 1e-2, 1e-3) == pytest.approx(1e-3, rel=1e-12)
