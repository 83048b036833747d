"""The PC-DARTS search supernet (spec §2): partial-channel mixed ops, cells and the network.

Architecture parameters never live in the Flax params: they are a pytree of their own, passed to
`apply` as an argument, so weights and architecture keep separate optimiser states. `apply` also takes a
`sampler` (darts_jax.relaxations.SamplerConfig) and its temperature `tau`: the op weights are then drawn
from the 'gumbel' RNG, one draw per cell kind and forward pass (or per example). When the draw is hard
and shared by the batch (GDAS' `gumbel_st`), an op that no edge of a group selected is not computed
(except on CPU: `skips_unselected_ops`).
"""
from __future__ import annotations

import collections
from typing import Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.engine import collectives
from darts_jax.engine.state import count_params
from darts_jax.nn.layers import (
    BatchNorm,
    channel_shuffle,
    init_variables,
    max_pool_2x2_ceil,
)
from darts_jax.relaxations import (
    DETERMINISTIC_MODES,
    SamplerConfig,
    auxiliary_skip,
    edge_weights,
    sample_arch_weights,
    softmax_weights,
)
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype import (
    ARCH_KEYS,
    NODE_BOUNDS,
    NODES,
    NUM_MIXED_EDGES,
)
from darts_jax.spaces.pcdarts2d.operations import (
    POOLS,
    ConvOp,
    FactorizedReduce,
    ReLUConvBN,
    conv_primitive,
)
from darts_jax.spaces.pcdarts2d.skeleton import (
    CellPlan,
    Head,
    Stems,
    cell_plan,
    init_wave,
    input_features,
)

NUM_NODES = NODES
NUM_EDGES = NUM_MIXED_EDGES
# Node i's incoming edges are rows EDGE_STARTS[i] + source, for sources 0 .. i + 1.
EDGE_STARTS = NODE_BOUNDS[:-1]
STEM_MULTIPLIER = 3


def init_arch(key, num_ops: int) -> dict:
    """α (14 x ops) and β (14) for normal and reduction cells, all 1e-3·N(0, 1)."""
    shapes = {"alphas_normal": (NUM_EDGES, num_ops), "alphas_reduce": (NUM_EDGES, num_ops),
              "betas_normal": (NUM_EDGES,), "betas_reduce": (NUM_EDGES,)}
    keys = jax.random.split(key, len(ARCH_KEYS))
    return {name: 1e-3 * jax.random.normal(k, shapes[name]) for name, k in zip(ARCH_KEYS, keys)}


def cell_weights(arch: dict, kind: str, sampler: SamplerConfig | None = None, key=None, tau=1.0,
                 batch_size: int | None = None):
    """(op weights 14 x ops, edge weights 14) of the 'normal' or 'reduce' cell: softmax(α) without a
    `sampler`, else drawn with `key` at temperature `tau` (per example: batch_size x 14 x ops).
    β stays a softmax in every mode: GDAS and SNAS sample ops, and PC-DARTS' edge normalisation is not theirs.
    """
    alphas = arch[f"alphas_{kind}"]
    if sampler is None:
        op_weights = softmax_weights(None, alphas)
    else:
        op_weights = sample_arch_weights(key, alphas, tau, sampler.mode, sampler.num_samples,
                                         batch_size if sampler.per_example_sample else None)
    return op_weights, edge_weights(arch[f"betas_{kind}"], NODE_BOUNDS)


def sampled_cell_weights(module: nn.Module, arch: dict, sampler: SamplerConfig | None, tau, batch_size: int,
                         primitives: Sequence[str] = (), aux_skip=None) -> dict:
    """{kind: cell_weights} of both cell kinds, each kind with its own draw from `module`'s 'gumbel' RNG
    (shared by every cell of that kind, as GDAS). Per-example draws differ across devices too.
    With `aux_skip` (DARTS-' β, a scalar) every edge's skip_connect of `primitives` weighs that much more."""
    if sampler is None or sampler.mode in DETERMINISTIC_MODES:
        weights = {kind: cell_weights(arch, kind, sampler, None, tau) for kind in ("normal", "reduce")}
    else:
        weights = {}
        for kind in ("normal", "reduce"):
            key = module.make_rng("gumbel")
            if sampler.per_example_sample and collectives.axis_name() is not None:
                key = jax.random.fold_in(key, jax.lax.axis_index(collectives.axis_name()))
            weights[kind] = cell_weights(arch, kind, sampler, key, tau, batch_size)
    if aux_skip is None:
        return weights
    skip = list(primitives).index("skip_connect")
    return {kind: (auxiliary_skip(op_weights, skip, aux_skip), edges) for kind, (op_weights, edges) in weights.items()}


def skips_unselected_ops(sampler: SamplerConfig | None) -> bool:
    """Whether a forward under `sampler` leaves out the ops that no edge selected: for hard draws shared by
    the batch, and not on XLA:CPU, where the gradient through the branches ran slower than computing every
    op (one group of 4 edges at 32 channels: 440 vs 55 ms; the 4-layer, 8-channel search step: 633 vs
    641 ms, no gain); there every op runs and feeds only the edges that selected it: the same numbers."""
    return sampler is not None and sampler.skips_unselected_ops and jax.default_backend() != "cpu"


def op_child_names(primitives: Sequence[str], class_of: Callable[[str], str | None]) -> dict:
    """{primitive: the name linen would give its module}: Class_n, counted per class in primitive order.

    Given explicitly because an op run in a branch is built outside its group's naming, and the parameter
    tree must not depend on whether ops may be skipped. `class_of(primitive)` is None for parameter-free ops.
    """
    counts, names = collections.Counter(), {}
    for name in primitives:
        cls = class_of(name)
        if cls is not None:
            names[name] = f"{cls}_{counts[cls]}"
            counts[cls] += 1
    return names


class _OneOp(nn.Module):
    """One primitive of a mixed-op group as a module of its own, to run it as a pure function in a branch."""
    run_op: Callable
    primitive: str

    @nn.compact
    def __call__(self, x):
        return self.run_op(self.primitive, x)


def _run_if(module: nn.Module, selected, run_op: Callable, primitive: str, child: str | None, shape, x):
    """run_op(primitive, x) if `selected`, else zeros of `shape`, under `jax.lax.cond` on the op's own
    variables (module child `child`); its BatchNorm statistics are written back, unchanged when skipped.

    The op runs as a pure function of its own variables: Flax's lifted `nn.cond` would hand every variable
    of `module` in and out of each branch, and differentiate each branch with respect to all of them.
    """
    variables = {col: {child: tree[child]} for col, tree in module.variables.items() if child in tree}
    stats = variables.get("batch_stats", {})

    def run(variables, x):
        y, updates = _OneOp(run_op, primitive, parent=None).apply(variables, x, mutable=["batch_stats"])
        return y, updates.get("batch_stats", {})

    y, stats = jax.lax.cond(selected, run, lambda variables, x: (jnp.zeros(shape, x.dtype), stats), variables, x)
    if stats and module.is_mutable_collection("batch_stats"):
        module.put_variable("batch_stats", child, stats[child])
    return y


def mix_ops(module: nn.Module, primitives: Sequence[str], op_weights_NxO, x, run_op: Callable,
            output_shape: Callable, child_names: dict, skip_unselected: bool):
    """Σ_o w_o · op_o(x) over the ops of one group of edges ('none' adds nothing).

    `op_weights_NxO` (edges, ops), or per example (B, edges, ops); `run_op(primitive, x)` builds and runs an
    op, giving (B, ..., edges or 1, C), of shape `output_shape(primitive)`, named `child_names[primitive]`.
    With `skip_unselected` (forward weights exactly 0 off the sampled ops, shared by the batch) an op no
    edge selected is not computed (`lax.cond`, a real branch under jit and pmap; under vmap with a batched
    choice it becomes a select that computes both), and an op only feeds the edges that selected it, so the
    gradient reaches α only through the selected op's weight, as in GDAS; running the op or skipping it then
    gives the same result.
    """
    mixed = 0.0
    for o, name in enumerate(primitives):
        if name == "none":
            continue
        weight = op_weights_NxO[..., o]
        if skip_unselected and not module.is_initializing():
            selected = jax.lax.stop_gradient(weight) != 0
            y = _run_if(module, jnp.any(selected), run_op, name, child_names.get(name), output_shape(name), x)
            weight = jnp.where(selected, weight, 0.0)
        else:
            y = run_op(name, x)
        if weight.ndim == 1:  # (edges,) against (B, ..., edges, C)
            weight = weight[:, None]
        else:  # per example (B, edges)
            weight = weight.reshape(weight.shape[0], *[1] * (y.ndim - 3), weight.shape[1], 1)
        mixed = mixed + weight * y
    return mixed


class MixedOpGroup(nn.Module):
    """The mixed ops of all edges leaving one state, on its first C/K channels.

    Returns the weighted op sums (B, H, W, edges, C/K) and the bypassed channels (None when K = 1).
    Pools, identity and their BN(affine=False) give the same output on every edge, so they run once.
    """
    primitives: Sequence[str]
    features: int
    stride: int
    edges: int
    partial_k: int
    depthwise: str = "auto"
    skip_unselected: bool = False

    def _class_of(self, name):
        if name in POOLS:
            return "BatchNorm"
        if name == "skip_connect":
            return None if self.stride == 1 else "FactorizedReduce"
        return "ConvOp" if conv_primitive(name) else None

    @nn.compact
    def __call__(self, x, op_weights_NxO, train: bool):
        partial = x[..., :self.features]
        names = op_child_names(self.primitives, self._class_of)
        # Every op of the group has the pools' spatial shape (otherwise they could not be mixed).
        spatial = jax.eval_shape(lambda p: POOLS["max_pool_3x3"](p, self.stride), partial).shape[:-1]

        def output_shape(name):
            shared = name in POOLS or name == "skip_connect" and self.stride == 1  # one output for all edges
            return (*spatial, 1 if shared else self.edges, self.features)

        def run_op(name, partial):
            if name in POOLS:
                return BatchNorm(False, name=names[name])(POOLS[name](partial, self.stride), train)[..., None, :]
            if name == "skip_connect" and self.stride == 1:
                return partial[..., None, :]
            if name == "skip_connect":
                op = FactorizedReduce(self.features, False, self.edges, name=names[name])
            else:
                family, kernel = conv_primitive(name)
                op = ConvOp(family, kernel, self.features, self.stride, False, self.edges, self.depthwise,
                            name=names[name])
            y = op(partial, train)
            return y.reshape(*y.shape[:-1], self.edges, self.features)

        mixed = mix_ops(self, self.primitives, op_weights_NxO, partial, run_op, output_shape, names,
                        self.skip_unselected)
        if self.partial_k == 1:
            return mixed, None
        bypass = x[..., self.features:]
        return mixed, bypass if self.stride == 1 else max_pool_2x2_ceil(bypass)


def mix_cell(states: list, group, edge_weights_E, partial_k: int) -> list:
    """The 4 intermediate nodes of a PC-DARTS search cell from its 2 input `states`, appended to them.

    `group(source, edges)` runs the mixed ops of every edge leaving state `source` (rows `edges` of α/β)
    and returns their weighted op sums (..., edges, C/K) and the bypassed channels (None when K = 1).
    Node i sums its incoming edges weighted by β, then (K > 1) shuffles the op sums with the bypass.
    Shared by the 2-D space and the raw 1-D space, whose cells differ only in their ops.
    """
    op_sums, bypass_sums = [0.0] * NUM_NODES, [0.0] * NUM_NODES
    # Sources in order: once source i + 1 is processed, node i has all its inputs.
    for source in range(NUM_NODES + 1):
        nodes = range(max(source - 1, 0), NUM_NODES)
        edges = [EDGE_STARTS[node] + source for node in nodes]
        mixed, bypass = group(source, edges)
        for e, (node, edge) in enumerate(zip(nodes, edges)):
            op_sums[node] = op_sums[node] + edge_weights_E[edge] * mixed[..., e, :]
            if bypass is not None:
                bypass_sums[node] = bypass_sums[node] + edge_weights_E[edge] * bypass
        if source >= 1:
            node = source - 1
            states.append(op_sums[node] if partial_k == 1 else
                          channel_shuffle(jnp.concatenate([op_sums[node], bypass_sums[node]], -1), partial_k))
    return states[2:]


class SearchCell(nn.Module):
    plan: CellPlan
    primitives: Sequence[str]
    partial_k: int
    depthwise: str = "auto"
    skip_unselected: bool = False

    @nn.compact
    def __call__(self, s0, s1, op_weights_ExO, edge_weights_E, train: bool):
        channels, k = self.plan.channels, self.partial_k
        if self.plan.reduction_prev:
            s0 = FactorizedReduce(channels, False)(s0, train)
        else:
            s0 = ReLUConvBN(channels, False)(s0, train)
        states = [s0, ReLUConvBN(channels, False)(s1, train)]

        def group(source, edges):
            stride = 2 if self.plan.reduction and source < 2 else 1
            return MixedOpGroup(self.primitives, channels // k, stride, len(edges), k, self.depthwise,
                                self.skip_unselected)(states[source], op_weights_ExO[..., np.array(edges), :], train)

        return jnp.concatenate(mix_cell(states, group, edge_weights_E, k), axis=-1)


class SearchNetwork(nn.Module):
    """Waveforms (B, S) and architecture parameters to class logits (B, classes); with a `sampler`, the op
    weights are drawn at temperature `tau` (see the module docstring); `aux_skip` is DARTS-' β."""
    config: ModelConfig

    @nn.compact
    def __call__(self, wave_BxS, arch: dict, train: bool, sampler: SamplerConfig | None = None, tau=1.0,
                 aux_skip=None):
        cfg = self.config
        x = input_features(self, cfg.frontend, wave_BxS, train, cfg.mask)
        s0, s1 = Stems(STEM_MULTIPLIER * cfg.init_channels)(x, train)
        weights = sampled_cell_weights(self, arch, sampler, tau, wave_BxS.shape[0], cfg.primitives, aux_skip)
        skip = skips_unselected_ops(sampler)
        for plan in cell_plan(cfg.layers, cfg.init_channels):
            op_weights_ExO, edge_weights_E = weights["reduce" if plan.reduction else "normal"]
            cell = SearchCell(plan, cfg.primitives, cfg.partial_k, cfg.depthwise, skip)
            s0, s1 = s1, cell(s0, s1, op_weights_ExO, edge_weights_E, train)
        logits, _ = Head(cfg.num_classes)(s1)
        return logits


def init_supernet(seed: int, config: ModelConfig) -> tuple[dict, dict]:
    """(variables with params and batch_stats, architecture parameters), on a short dummy input:
    weight shapes do not depend on the audio length."""
    arch = init_arch(jax.random.key(seed), len(config.primitives))
    return init_variables(SearchNetwork(config), seed, init_wave(), arch, train=False), arch


def count_supernet_params(config: ModelConfig) -> tuple[int, int]:
    """(trainable weights, architecture values), counted from shapes without computing anything."""
    arch = jax.eval_shape(lambda: init_arch(jax.random.key(0), len(config.primitives)))
    variables = jax.eval_shape(lambda a: SearchNetwork(config).init(jax.random.key(0), init_wave(), a, False), arch)
    return count_params(variables["params"]), count_params(arch)
