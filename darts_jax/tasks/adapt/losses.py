"""The loss terms of source-free adaptation (FReTAL, Kim, Tariq and Woo, CVPRW 2021) and its baselines.

All terms take fixed-shape arrays, so one compiled step serves every batch: the (class, confidence bin)
cells of representation learning are masks, never gathers of a data-dependent size, and CutMix's box
is an iota comparison. Spec: ../shared/spec/related_systems.md §3.3 to §3.5.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

NUM_CLASSES = 2
# Bins over the softmax probability of the true class, (lo, hi]; p <= 0.5 (misclassified) enters none.
BIN_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
NUM_BINS = len(BIN_EDGES) - 1


def kd_term(student_logits_BxK, teacher_logits_BxK, labels_B, temperature: float, alpha: float):
    """Hinton's distillation: α·T²·KL(softmax(zᵀ/T) ‖ softmax(zˢ/T)) + (1 − α)·CE(zˢ, y), batch means."""
    log_p_student = jax.nn.log_softmax(student_logits_BxK / temperature)
    log_p_teacher = jax.nn.log_softmax(teacher_logits_BxK / temperature)
    kl_B = (jnp.exp(log_p_teacher) * (log_p_teacher - log_p_student)).sum(-1)
    return alpha * temperature ** 2 * kl_B.mean() + (1.0 - alpha) * cross_entropy(student_logits_BxK, labels_B)


def cross_entropy(logits_BxK, labels_B):
    return -jnp.take_along_axis(jax.nn.log_softmax(logits_BxK), labels_B[:, None], axis=-1).mean()


def representation(features_BxD, prototype: str):
    """φ: the per-sample representation a cell averages. 'scalar' is the reference code's channel mean
    (one number per sample); 'vector' keeps every channel."""
    if prototype == "scalar":
        return features_BxD.mean(-1, keepdims=True)
    if prototype == "vector":
        return features_BxD
    raise ValueError(f"prototype: {prototype!r} is not known; use 'scalar' or 'vector'")


def cell_masks(logits_BxK, labels_B):
    """m[n, c, b] = [y_n = c]·[p_n(y_n) in bin b], bins (lo, hi] from BIN_EDGES: only correctly
    classified samples (p > 0.5) fall in a bin. Computed without gradient."""
    p_true_B = jnp.take_along_axis(jax.nn.softmax(lax.stop_gradient(logits_BxK)), labels_B[:, None], axis=-1)[:, 0]
    edges = jnp.asarray(BIN_EDGES, p_true_B.dtype)
    in_bin_BxN = (p_true_B[:, None] > edges[None, :-1]) & (p_true_B[:, None] <= edges[None, 1:])
    is_class_BxC = labels_B[:, None] == jnp.arange(NUM_CLASSES)[None, :]
    return (is_class_BxC[:, :, None] & in_bin_BxN[:, None, :]).astype(logits_BxK.dtype)


def cell_sums(logits_BxK, labels_B, phi_BxD):
    """(Σ_n m·φ_n of shape (C, N, D), Σ_n m of shape (C, N)) over a batch."""
    masks_BxCxN = cell_masks(logits_BxK, labels_B)
    return jnp.einsum("bcn,bd->cnd", masks_BxCxN, phi_BxD), masks_BxCxN.sum(0)


def cell_means(sums_CxNxD, counts_CxN):
    """Cell means; an empty cell's is 0 (its count is clamped to 1), and it is masked out by the caller."""
    return sums_CxNxD / jnp.maximum(counts_CxN, 1.0)[..., None]


def rel_term(student_logits_BxK, labels_B, phi_BxD, teacher_prototypes_CxNxD, teacher_counts_CxN):
    """L_ReL = Σ over cells non-empty for both student batch and teacher of mean_d (μˢ − μᵀ)².

    The reference code sums over cells without normalising by their number; with a vector φ the squared
    distance is averaged over channels, so a D-channel prototype has the scalar one's scale.
    """
    sums, counts = cell_sums(student_logits_BxK, labels_B, phi_BxD)
    active_CxN = (counts > 0) & (teacher_counts_CxN > 0)
    distance_CxN = ((cell_means(sums, counts) - teacher_prototypes_CxNxD) ** 2).mean(-1)
    return jnp.where(active_CxN, distance_CxN, 0.0).sum()


def l2sp_term(params, teacher_params, head_keys, teacher_logits_BxK, labels_B):
    """T-GD's transfer term: γ·½(‖w − wᵀ‖² over the non-head weights + ‖w_head‖²), γ = sigmoid(−CEᵀ(batch)),
    with the ½ of the reference code's reg_l2sp and reg_cls.

    `head_keys`: the top-level parameter names of the classifier head (its weights are pulled to 0,
    the rest to the teacher's).
    """
    gamma = jax.nn.sigmoid(-cross_entropy(lax.stop_gradient(teacher_logits_BxK), labels_B))
    squares = 0.0
    for key in params:
        if key in head_keys:
            squares += sum(jnp.sum(w ** 2) for w in jax.tree.leaves(params[key]))
        else:
            squares += sum(jnp.sum((w - lax.stop_gradient(t)) ** 2) for w, t in
                           zip(jax.tree.leaves(params[key]), jax.tree.leaves(teacher_params[key])))
    return 0.5 * gamma * squares


def cutmix(key, inputs_BxL, labels_B, probability: float, box_axes: int):
    """The reference code's CutMix: with `probability`, one box (area ratio 1 − λ, λ ~ Beta(0.5, 0.5),
    centre uniform; the same box for the batch) is pasted from a permuted partner into each row whose
    partner has a different label. Labels are never mixed. The box spans axes 1..box_axes of the input
    (2 for images (B, H, W[, C]), 1 for waveforms (B, S)). Returns (inputs, rows that were changed)."""
    k_apply, k_perm, k_lam, k_centre = jax.random.split(key, 4)
    inputs_BxL, labels_B = jnp.asarray(inputs_BxL), jnp.asarray(labels_B)
    batch = inputs_BxL.shape[0]
    partner_B = jax.random.permutation(k_perm, batch)
    mixed_B = (labels_B != labels_B[partner_B]) & jax.random.bernoulli(k_apply, probability)
    lam = jax.random.beta(k_lam, 0.5, 0.5)
    sizes = inputs_BxL.shape[1:1 + box_axes]
    centres = jax.random.uniform(k_centre, (box_axes,))
    box = jnp.ones(sizes, bool)
    for axis, size in enumerate(sizes):
        half = jnp.floor(size * (1.0 - lam) ** (1.0 / box_axes)) / 2.0
        centre = jnp.floor(centres[axis] * size)
        lo, hi = jnp.clip(centre - half, 0, size), jnp.clip(centre + half, 0, size)
        position = lax.broadcasted_iota(jnp.float32, sizes, axis)
        box &= (position >= lo) & (position < hi)
    box = box.reshape(sizes + (1,) * (inputs_BxL.ndim - 1 - box_axes))
    pasted = jnp.where(mixed_B.reshape((batch,) + (1,) * (inputs_BxL.ndim - 1)) & box,
                       inputs_BxL[partner_B], inputs_BxL)
    return pasted, mixed_B
