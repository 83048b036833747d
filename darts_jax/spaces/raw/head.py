"""The classifier of Raw PC-DARTS (spec §4): a PyTorch-layout GRU, a linear embedding, P2SGrad.

The GRU follows torch.nn.GRU exactly, which Flax's GRUCell does not: 6H biases per layer (b_ih and b_hh
for each of r, z, n) and the reset gate applied to (W_hn·h + b_hn). Weights are stored transposed,
(in, 3H), gates in PyTorch's order r, z, n. Time runs in `lax.scan` (one compiled step, no Python loop);
each layer's input projections for all steps are one matmul before the scan.

P2SGrad's output is cos θ between the embedding and each class's unit weight column; its loss is the
mean squared error against the one-hot target, over B·2, without class weights (spec §5.3).
"""
from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from darts_jax.nn.layers import Dense, torch_uniform

# PyTorch's renorm(2, 1, 1e-5).mul(1e5) of the P2SGrad weight (spec §4).
RENORM_MAX = 1e-5
RENORM_EPS = 1e-7


def gru_cell(h_BxH, gates_x_Bx3H, w_hh_Hx3H, b_hh_3H):
    """One PyTorch GRU step, given the input projection W_ih·x + b_ih of this step."""
    hidden = h_BxH.shape[-1]
    gates_h = h_BxH @ w_hh_Hx3H + b_hh_3H
    x_r, x_z, x_n = (gates_x_Bx3H[..., i * hidden:(i + 1) * hidden] for i in range(3))
    h_r, h_z, h_n = (gates_h[..., i * hidden:(i + 1) * hidden] for i in range(3))
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h_BxH


def gru_layer(x_BxTxD, w_ih_Dx3H, w_hh_Hx3H, b_ih_3H, b_hh_3H):
    """All hidden states (B, T, H) of one GRU layer from h0 = 0."""
    gates_x_TxBx3H = jnp.swapaxes(x_BxTxD @ w_ih_Dx3H + b_ih_3H, 0, 1)

    def step(h_BxH, gates_x_Bx3H):
        h_BxH = gru_cell(h_BxH, gates_x_Bx3H, w_hh_Hx3H, b_hh_3H)
        return h_BxH, h_BxH

    h0 = jnp.zeros((x_BxTxD.shape[0], w_hh_Hx3H.shape[0]), x_BxTxD.dtype)
    _, h_TxBxH = lax.scan(step, h0, gates_x_TxBx3H)
    return jnp.swapaxes(h_TxBxH, 0, 1)


class GRU(nn.Module):
    """Stacked batch-first GRU; returns the top layer's states (B, T, H). Init U(±1/√H), as PyTorch."""
    hidden: int
    layers: int

    @nn.compact
    def __call__(self, x_BxTxD):
        init, h3 = torch_uniform(self.hidden), 3 * self.hidden
        for layer in range(self.layers):
            w_ih = self.param(f"weight_ih_l{layer}", init, (x_BxTxD.shape[-1], h3))
            w_hh = self.param(f"weight_hh_l{layer}", init, (self.hidden, h3))
            b_ih = self.param(f"bias_ih_l{layer}", init, (h3,))
            b_hh = self.param(f"bias_hh_l{layer}", init, (h3,))
            x_BxTxD = gru_layer(x_BxTxD, w_ih, w_hh, b_ih, b_hh)
        return x_BxTxD


def unit_columns(w_DxK):
    """Each column divided by (its norm + 1e-7); a column of norm <= 1e-5 is multiplied by 1e5 instead."""
    norms = jnp.sqrt(jnp.sum(jnp.square(w_DxK), axis=0))
    scale = jnp.where(norms > RENORM_MAX, 1.0 / (norms + RENORM_EPS), 1.0 / RENORM_MAX)
    return w_DxK * scale


class P2SGradOutput(nn.Module):
    """cos θ (B, classes) of the embedding with each unit weight column, clamped to [-1, 1].

    The stored weight is drawn U(-1, 1); `init_unit_columns` normalises its columns at initialisation,
    as the authors' layer does, and every forward pass normalises again (weight decay acts on the
    stored weight).
    """
    num_classes: int

    @nn.compact
    def __call__(self, x_BxD):
        w = self.param("weight", torch_uniform(1), (x_BxD.shape[-1], self.num_classes))
        # The authors divide by ‖x‖ without guard (a zero embedding is NaN there): keep it finite.
        squared = jnp.sum(jnp.square(x_BxD), axis=-1, keepdims=True)
        norm = jnp.sqrt(jnp.maximum(squared, jnp.finfo(x_BxD.dtype).tiny))
        return jnp.clip((x_BxD @ unit_columns(w)) / norm, -1.0, 1.0)


class Head(nn.Module):
    """(B, T, C) cell output -> GRU -> last step -> Linear -> P2SGrad; returns (cos θ, embedding)."""
    gru_hidden: int
    gru_layers: int
    embedding_dim: int
    num_classes: int

    @nn.compact
    def __call__(self, x_BxTxC):
        h_BxTxH = GRU(self.gru_hidden, self.gru_layers, name="gru")(x_BxTxC)
        embedding = Dense(self.embedding_dim, name="fc")(h_BxTxH[:, -1])
        return P2SGradOutput(self.num_classes, name="p2sgrad")(embedding), embedding


def init_unit_columns(variables: dict) -> dict:
    """`variables` with the P2SGrad weight's columns normalised, as the authors initialise it."""
    params = dict(variables["params"])
    head = dict(params["head"])
    p2sgrad = dict(head["p2sgrad"])
    p2sgrad["weight"] = unit_columns(p2sgrad["weight"])
    head["p2sgrad"], params["head"] = p2sgrad, head
    return {**variables, "params": params}


def p2sgrad_terms(cos_BxK, labels_B, class_weights):
    """(Σ (cos θ − one-hot)², B·K): the P2SGrad MSE as the engine's (numerator, denominator).

    `class_weights` is ignored: the authors' P2SGrad loss is unweighted (spec §5.3).
    """
    del class_weights
    target_BxK = jax.nn.one_hot(labels_B, cos_BxK.shape[-1], dtype=cos_BxK.dtype)
    return jnp.sum(jnp.square(cos_BxK - target_BxK)), jnp.asarray(cos_BxK.size, cos_BxK.dtype)
