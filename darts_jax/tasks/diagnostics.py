"""Collapse diagnostics of a search: the dominant eigenvalue of the validation loss's Hessian with respect
to α/β, RobustDARTS' indicator of a search about to collapse (what a space says of its own α/β, such as
PC-DARTS' count of parameter-free ops, is its `arch_diagnostics`).

The eigenvalue comes from power iteration on Hessian-vector products (forward-over-reverse autodiff), so
the Hessian is never formed; on a fixed batch, in train mode, without masking, so epochs compare.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree


def hessian_vector_product(loss_fn):
    """(params, vector) -> H(params)·vector of a scalar `loss_fn`, both pytrees alike."""
    def hvp(params, vector):
        return jax.jvp(jax.grad(loss_fn), (params,), (vector,))[1]

    return hvp


def dominant_eigenvalue(hvp, params, key, iterations: int = 50, tolerance: float = 1e-4) -> float:
    """The eigenvalue of largest magnitude of the Hessian behind `hvp` at `params`, by power iteration.

    Stops once the Rayleigh quotient changes by less than `tolerance` relative; `hvp` is best jitted.
    """
    flat, unravel = ravel_pytree(params)
    vector = jax.random.normal(key, flat.shape, flat.dtype)
    vector = vector / jnp.linalg.norm(vector)
    estimate = None
    for _ in range(iterations):
        product = ravel_pytree(hvp(params, unravel(vector)))[0]
        rayleigh = float(jnp.vdot(vector, product))
        norm = float(jnp.linalg.norm(product))
        if norm == 0.0:
            return 0.0
        vector = product / norm
        if estimate is not None and abs(rayleigh - estimate) <= tolerance * max(abs(rayleigh), 1e-12):
            return rayleigh
        estimate = rayleigh
    return float(estimate)
