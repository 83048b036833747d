"""The authors' PyTorch evaluation network (eurecom-asp/pc-darts-anti-spoofing, models/model.py) as a
darts_jax model folder: every state-dict tensor mapped to one Flax variable, shapes checked.

Names on the PyTorch side (nn.Sequential indices in brackets):
  stem0.{0 conv, 1 BN, 3 conv, 4 BN}, stem1.{1 conv, 2 BN}
  cells.i.preprocess0: FactorizedReduce (conv_1, conv_2, bn) after a reduction cell, else ReLUConvBN op.{1 conv, 2 BN}
  cells.i.preprocess1: ReLUConvBN op.{1, 2}
  cells.i._ops.j: sep_conv op.{1 dw, 2 pw, 3 BN, 5 dw, 6 pw, 7 BN}; dil_conv op.{1 dw, 2 pw, 3 BN};
                  skip_connect on a stride-2 edge: FactorizedReduce; pools and identity have no tensors
  classifier.{weight, bias}; feature.lfcc_fb and feature.l_dct.weight (fixed front-end matrices)
and on the Flax side the module names of darts_jax.spaces.pcdarts2d.network (DerivedCell_i/Op_j/...).

Layouts: conv OIHW -> HWIO; depthwise (C, 1, k, k) -> (k, k, C); 1x1 (O, I, 1, 1) -> (1, I, O) for the
per-edge pointwise; linear (O, I) -> (I, O). FactorizedReduce's conv_1 and conv_2 see the same input
(the authors removed the shift), so their kernels concatenated on the output axis are our one conv.
BN weight/bias/running_mean/running_var -> scale/bias/mean/var. Two kinds of tensors have no Flax
variable and are still consumed by a rule: `num_batches_tracked` (a training counter, unused with
momentum 0.1) and the front-end matrices, which are compared with darts_jax's own (an imported model
is only right if its features are computed alike). The authors' LFCC and LFB modules store the same
two matrices and the network's weights do not depend on the feature size, so a state dict cannot tell
an LFCC model from an LFB one: the front end must be given right (the released 4-16.pth is LFCC).
"""
from __future__ import annotations

import jax
import numpy as np
from flax import traverse_util

from darts_jax.nn import frontends
from darts_jax.spaces import get_space
from darts_jax.spaces.pcdarts2d.network import init_network
from darts_jax.spaces.pcdarts2d.operations import POOLS, conv_primitive
from darts_jax.spaces.pcdarts2d.skeleton import cell_plan
from darts_jax.spoofing.export import export_model
from darts_jax.spoofing.torch_checkpoint import load_state_dict
from darts_jax.tasks.train import TrainConfig

_BN = {"weight": ("params", "scale"), "bias": ("params", "bias"),
       "running_mean": ("batch_stats", "mean"), "running_var": ("batch_stats", "var")}
_FRONTEND_TOLERANCE = 1e-5  # the authors' matrices are float32 copies of the same formulas


def _conv(w):
    return w.transpose(2, 3, 1, 0)


def _depthwise(w):
    return w[:, 0].transpose(1, 2, 0)


def _pointwise(w):
    return w[:, :, 0, 0].T[None]


class _Mapping:
    """Collects (torch names, Flax collection and path, transform) rules for one network."""

    def __init__(self):
        self.rules = []  # (torch names, collection, flax path, function of the arrays)

    def add(self, torch_names, collection, path, transform):
        self.rules.append((tuple(torch_names), collection, tuple(path), transform))

    def bn(self, torch_prefix, path, affine=True):
        for torch_field, (collection, leaf) in _BN.items():
            if affine or collection == "batch_stats":
                self.add([f"{torch_prefix}.{torch_field}"], collection, path + (leaf,), lambda w: w)

    def conv(self, torch_name, path):
        self.add([torch_name], "params", path + ("kernel",), _conv)

    def factorized_reduce(self, torch_prefix, path, affine):
        self.add([f"{torch_prefix}.conv_1.weight", f"{torch_prefix}.conv_2.weight"], "params",
                 path + ("Conv_0", "kernel"), lambda a, b: _conv(np.concatenate([a, b], axis=0)))
        self.bn(f"{torch_prefix}.bn", path + ("BatchNorm_0",), affine)

    def relu_conv_bn(self, torch_prefix, path):
        self.conv(f"{torch_prefix}.op.1.weight", path + ("Conv_0",))
        self.bn(f"{torch_prefix}.op.2", path + ("BatchNorm_0",), affine=False)

    def conv_unit(self, torch_prefix, first_index, path):
        dw, pw, bn = (f"{torch_prefix}.op.{first_index + k}" for k in range(3))
        self.add([f"{dw}.weight"], "params", path + ("DepthwiseConv_0", "depthwise"), _depthwise)
        self.add([f"{pw}.weight"], "params", path + ("EdgePointwise_0", "pointwise"), _pointwise)
        self.bn(bn, path + ("BatchNorm_0",))


def _network_mapping(model, genotype) -> _Mapping:
    m = _Mapping()
    stems = ("Stems_0",)
    m.conv("stem0.0.weight", stems + ("Conv_0",))
    m.bn("stem0.1", stems + ("BatchNorm_0",))
    m.conv("stem0.3.weight", stems + ("Conv_1",))
    m.bn("stem0.4", stems + ("BatchNorm_1",))
    m.conv("stem1.1.weight", stems + ("Conv_2",))
    m.bn("stem1.2", stems + ("BatchNorm_2",))
    for i, plan in enumerate(cell_plan(model.layers, model.init_channels)):
        torch_cell, cell = f"cells.{i}", (f"DerivedCell_{i}",)
        if plan.reduction_prev:
            m.factorized_reduce(f"{torch_cell}.preprocess0", cell + ("FactorizedReduce_0",), affine=False)
            m.relu_conv_bn(f"{torch_cell}.preprocess1", cell + ("ReLUConvBN_0",))
        else:
            m.relu_conv_bn(f"{torch_cell}.preprocess0", cell + ("ReLUConvBN_0",))
            m.relu_conv_bn(f"{torch_cell}.preprocess1", cell + ("ReLUConvBN_1",))
        ops = genotype.reduce if plan.reduction else genotype.normal
        for j, (name, source) in enumerate(ops):
            torch_op, op = f"{torch_cell}._ops.{j}", cell + (f"Op_{j}",)
            stride = 2 if plan.reduction and source < 2 else 1
            if name == "skip_connect" and stride == 2:
                m.factorized_reduce(torch_op, op + ("FactorizedReduce_0",), affine=True)
            elif conv_primitive(name) is not None:
                family, _ = conv_primitive(name)
                m.conv_unit(torch_op, 1, op + ("ConvOp_0", "ConvUnit_0"))
                if family == "sep":
                    m.conv_unit(torch_op, 5, op + ("ConvOp_0", "ConvUnit_1"))
            elif name not in POOLS and name not in ("skip_connect", "none"):
                raise ValueError(f"genotype: operation {name!r} has no PyTorch counterpart")
    m.add(["classifier.weight"], "params", ("Head_0", "Dense_0", "kernel"), lambda w: w.T)
    m.add(["classifier.bias"], "params", ("Head_0", "Dense_0", "bias"), lambda w: w)
    return m


def _frontend_matrices(frontend: str) -> dict:
    """The fixed tensors the authors' front-end module stores, as darts_jax computes them."""
    if frontend == "spec":
        return {}
    # LinearDCT stores the transpose of the matrix it right-multiplies by; LFB keeps an unused DCT too.
    return {"feature.lfcc_fb": frontends.linear_filterbank(),
            "feature.l_dct.weight": frontends.dct_matrix(frontends.NUM_FILTERS, frontends.NUM_FILTERS).T}


def variables_from_state_dict(state: dict, model, genotype, where: str = "checkpoint") -> dict:
    """Flax variables (params, batch_stats) of the derived network from the authors' state dict.

    Every tensor must be used by exactly one rule and every Flax variable filled exactly once, with the
    template's shape; otherwise a ValueError lists the offending names.
    """
    template = jax.eval_shape(lambda: init_network(0, model, genotype))
    expected = {(collection, path): leaf.shape for collection in template
                for path, leaf in traverse_util.flatten_dict(template[collection]).items()}
    used, filled, problems, flat = set(), set(), [], {}
    for torch_names, collection, path, transform in _network_mapping(model, genotype).rules:
        missing = [name for name in torch_names if name not in state]
        if missing:
            problems.append(f"missing tensor(s) {', '.join(missing)} (for {collection}/{'/'.join(path)})")
            continue
        used.update(torch_names)
        value = np.asarray(transform(*(state[name] for name in torch_names)), np.float32)
        key = (collection, path)
        if key not in expected:
            problems.append(f"{', '.join(torch_names)}: no variable {collection}/{'/'.join(path)} in this network")
        elif value.shape != expected[key]:
            problems.append(f"{', '.join(torch_names)}: shape {value.shape} after layout change, the network "
                            f"needs {expected[key]} at {collection}/{'/'.join(path)}")
        filled.add(key)
        flat[key] = value
    for name, ours in _frontend_matrices(model.frontend).items():
        if name not in state:
            problems.append(f"missing tensor {name} (the {model.frontend} front end's fixed matrix)")
            continue
        used.add(name)
        theirs = state[name]
        if theirs.shape != ours.shape or np.abs(theirs - ours).max() > _FRONTEND_TOLERANCE:
            problems.append(f"{name}: differs from darts_jax's {model.frontend} front end; the checkpoint was "
                            f"made with other front-end settings (check --frontend)")
    used.update(name for name in state if name.endswith(".num_batches_tracked"))
    leftover = sorted(set(state) - used)
    if leftover:
        problems.append(f"{len(leftover)} tensor(s) not used by this network: {', '.join(leftover)}")
    unfilled = sorted(f"{c}/{'/'.join(p)}" for c, p in set(expected) - filled)
    if unfilled:
        problems.append(f"{len(unfilled)} variable(s) not filled: {', '.join(unfilled)}")
    if problems:
        raise ValueError(f"{where} does not match the network (--genotype, --layers, --init-channels, "
                         f"--frontend):\n  " + "\n  ".join(problems))
    variables = {}
    for (collection, path), value in flat.items():
        variables.setdefault(collection, {})[path] = value
    return {collection: traverse_util.unflatten_dict(tree) for collection, tree in variables.items()}


def import_checkpoint(checkpoint, out_dir, *, genotype: str, model, calibration=None):
    """Reads the authors' checkpoint (restricted unpickler) and writes a darts_jax model folder."""
    space = get_space("pcdarts")
    parsed = space.load_genotype(genotype, model)
    variables = variables_from_state_dict(load_state_dict(checkpoint), model, parsed, str(checkpoint))
    # The text form goes into the config, so the folder does not depend on a genotype file.
    config = TrainConfig(model=model, space=space.name, genotype=space.genotype_text(parsed))
    return export_model(out_dir, config, parsed, variables, calibration=calibration)
