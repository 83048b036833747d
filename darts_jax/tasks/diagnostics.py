"""Collapse diagnostics of a search: the dominant eigenvalue of the validation loss's Hessian with respect
to α/β, RobustDARTS' indicator of a search about to collapse, and its early-stop rule on that eigenvalue
(what a space says of its own α/β, such as PC-DARTS' count of parameter-free ops, is its `arch_diagnostics`).

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


def check_early_stop(ratio: float, window: int, hessian_every: int) -> None:
    """Refuses RobustDARTS early-stop settings it cannot apply, naming the flag."""
    if not 0 < ratio < 1:
        raise ValueError(f"early_stop_ratio (--early-stop-ratio): {ratio} must be between 0 and 1 (RobustDARTS: "
                         f"0.75), or 0 for no early stop")
    if window < 1:
        raise ValueError(f"early_stop_window (--early-stop-window): {window} must be at least 1 epoch")
    if hessian_every != 1:
        raise ValueError(f"hessian_every (--hessian-every): early stopping reads the eigenvalue of every epoch; "
                         f"it is {hessian_every}, set it to 1")


def early_stop_epoch(eigenvalues: dict, epoch: int, ratio: float, window: int) -> int | None:
    """RobustDARTS' rule (Zela et al., ICLR 2020, DARTS-ES): with λ̄ the dominant eigenvalue averaged over
    `window` epochs, stop at `epoch` when λ̄(epoch - window) / λ̄(epoch) < `ratio` (the curvature grew by
    more than 1 / ratio within `window` epochs) and return the architecture of epoch - window.

    `eigenvalues` maps epochs to eigenvalues; the rule needs the 2·window epochs ending at `epoch` and
    positive means (a ratio of curvatures of either sign says nothing). Returns that earlier epoch, or None.
    """
    span = range(epoch - 2 * window + 1, epoch + 1)
    if any(e not in eigenvalues for e in span):
        return None
    before = sum(eigenvalues[e] for e in span[:window]) / window
    now = sum(eigenvalues[e] for e in span[window:]) / window
    if before > 0 and now > 0 and before / now < ratio:
        return epoch - window
    return None


class EarlyStop:
    """RobustDARTS' early stop as the driver's `early_stop` hook: the searched epochs' eigenvalues and the
    genotypes logged at each epoch start (by this run, and in the logs of the run it resumes)."""

    def __init__(self, ratio: float, window: int, warmup_epochs: int, log):
        self.ratio, self.window, self.warmup_epochs, self.log = ratio, window, warmup_epochs, log
        self.eigenvalues, self.genotypes, self.loaded = {}, {}, False

    def load(self) -> None:
        """The records of the run this one resumes, read once the driver has prepared the workdir; a later
        epoch's are replaced as this run redoes it."""
        if not self.loaded:
            self.loaded = True
            self.eigenvalues.update({r["epoch"]: r["hessian_eigenvalue"] for r in self.log.records("epochs")
                                     if "hessian_eigenvalue" in r})
            self.genotypes.update({r["epoch"]: r["genotype"] for r in self.log.records("genotypes")})

    def record_genotype(self, epoch: int, genotype: dict) -> None:
        self.load()
        self.genotypes[epoch] = genotype

    def __call__(self, epoch: int, summary: dict) -> dict | None:
        self.load()
        if "hessian_eigenvalue" in summary:
            self.eigenvalues[epoch] = summary["hessian_eigenvalue"]
        searched = {e: v for e, v in self.eigenvalues.items() if e >= self.warmup_epochs}
        chosen = early_stop_epoch(searched, epoch, self.ratio, self.window)
        # The genotype at the end of epoch `chosen` is the one logged at the start of the next.
        if chosen is None or chosen + 1 not in self.genotypes:
            return None
        return {"reason": f"RobustDARTS early stop: the mean Hessian eigenvalue of epochs {epoch - self.window + 1}"
                          f"..{epoch} is more than {1 / self.ratio:.3g} x that of epochs "
                          f"{chosen - self.window + 1}..{chosen}; the genotype is that of the end of epoch {chosen}",
                "epoch": epoch, "genotype_epoch": chosen, "genotype": self.genotypes[chosen + 1]}
