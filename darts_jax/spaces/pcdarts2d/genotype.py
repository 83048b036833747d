"""Discrete cell architectures (genotypes): derivation from α/β, the JSON form, validation (the PyTorch
text form, the published genotypes and loading from any form are in `genotype_text`).

A genotype lists, for each of a cell's 4 intermediate nodes, two (op, input) pairs. Input 0 is
s0, 1 is s1 and 2+ are earlier nodes, so node i (0-based) may read inputs 0..i+1. The text form
is exactly what the authors' PyTorch code prints (spec Appendix), because that is what users paste.
"""
from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence

import numpy as np

from darts_jax.relaxations import edge_weights, softmax_entropy, softmax_np
from darts_jax.spaces.pcdarts2d.config import PRIMITIVES

NODES = 4
INPUTS_PER_NODE = 2
EDGES_PER_CELL = NODES * INPUTS_PER_NODE
NUM_MIXED_EDGES = sum(2 + node for node in range(NODES))
CONCAT = tuple(range(2, 2 + NODES))
NONE = "none"
SKIP = "skip_connect"
ARCH_KEYS = ("alphas_normal", "alphas_reduce", "betas_normal", "betas_reduce")
_FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")


@dataclasses.dataclass(frozen=True)
class Genotype:
    normal: tuple[tuple[str, int], ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[tuple[str, int], ...]
    reduce_concat: tuple[int, ...]

    def __post_init__(self):
        # Lists (from JSON or hand-written code) become tuples so that equal genotypes compare equal.
        for name in ("normal", "reduce"):
            object.__setattr__(self, name, tuple(tuple(edge) for edge in getattr(self, name)))
        for name in ("normal_concat", "reduce_concat"):
            object.__setattr__(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> dict:
        return {name: [list(item) if isinstance(item, tuple) else item for item in getattr(self, name)]
                for name in _FIELDS}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text_or_dict: str | Mapping, primitives: Sequence[str] = PRIMITIVES,
                  where: str = "genotype JSON") -> Genotype:
        """Reads the form written by `to_json` (a JSON string or the decoded dict) and validates it."""
        data = text_or_dict
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where}: line {err.lineno} column {err.colno}: not valid JSON ({err.msg})") from None
        if not isinstance(data, Mapping):
            raise ValueError(f"{where}: expected a JSON object with fields {list(_FIELDS)}, got {type(data).__name__}")
        missing = [name for name in _FIELDS if name not in data]
        unknown = sorted(set(data) - set(_FIELDS))
        if missing or unknown:
            raise ValueError(f"{where}: missing field(s) {missing}, unknown field(s) {unknown}; "
                             f"a genotype has exactly the fields {list(_FIELDS)}")
        for name in ("normal", "reduce"):
            edges = data[name]
            if not isinstance(edges, (list, tuple)) or not all(
                    isinstance(edge, (list, tuple)) and len(edge) == 2 for edge in edges):
                raise ValueError(f"{where}: field {name!r} must be a list of [op_name, input_index] pairs, "
                                 f"got {edges!r}")
        for name in ("normal_concat", "reduce_concat"):
            if not isinstance(data[name], (list, tuple)):
                raise ValueError(f"{where}: field {name!r} must be a list of node indices, got {data[name]!r}")
        genotype = cls(**{name: data[name] for name in _FIELDS})
        validate(genotype, primitives, where)
        return genotype

    def to_string(self) -> str:
        """The PyTorch printed form: `Genotype(normal=[('sep_conv_5x5', 0), ...], normal_concat=range(2, 6), ...)`."""
        return (f"Genotype(normal={_edges_text(self.normal)}, normal_concat={_concat_text(self.normal_concat)}, "
                f"reduce={_edges_text(self.reduce)}, reduce_concat={_concat_text(self.reduce_concat)})")


def _edges_text(edges) -> str:
    return "[" + ", ".join(f"({op!r}, {source})" for op, source in edges) + "]"


def _concat_text(concat) -> str:
    if concat and concat == tuple(range(concat[0], concat[0] + len(concat))):
        return f"range({concat[0]}, {concat[-1] + 1})"
    return "[" + ", ".join(str(node) for node in concat) + "]"


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate(genotype: Genotype, primitives: Sequence[str] = PRIMITIVES, where: str = "genotype") -> None:
    """Raises ValueError naming the cell, edge and node of the first thing wrong with `genotype`."""
    usable = [p for p in primitives if p != NONE]
    for cell in ("normal", "reduce"):
        edges = getattr(genotype, cell)
        if len(edges) != EDGES_PER_CELL:
            raise ValueError(f"{where}: {cell} cell has {len(edges)} edges; a cell needs exactly "
                             f"{EDGES_PER_CELL} ({INPUTS_PER_NODE} inputs for each of {NODES} nodes)")
        for index, edge in enumerate(edges):
            node = index // INPUTS_PER_NODE
            at = f"{where}: {cell}[{index}] (node {node})"
            if len(edge) != 2:
                raise ValueError(f"{at}: expected an (op_name, input_index) pair, got {edge!r}")
            op, source = edge
            if op == NONE:
                raise ValueError(f"{at}: {NONE!r} (the zero op) cannot be a cell edge; use one of {', '.join(usable)}")
            if not isinstance(op, str) or op not in usable:
                raise ValueError(f"{at}: unknown op {op!r}; known ops are {', '.join(usable)}")
            if not _is_int(source):
                raise ValueError(f"{at}: input index {source!r} is not an integer")
            if not 0 <= source <= node + 1:
                raise ValueError(f"{at}: input index {source!r} is out of range; node {node} may take inputs "
                                 f"0..{node + 1} (0 = s0, 1 = s1, 2+ = earlier nodes)")
        concat = getattr(genotype, f"{cell}_concat")
        if (not concat or not all(_is_int(n) and CONCAT[0] <= n <= CONCAT[-1] for n in concat)
                or len(set(concat)) != len(concat)):
            raise ValueError(f"{where}: {cell}_concat {list(concat)} must be distinct node indices in "
                             f"{CONCAT[0]}..{CONCAT[-1]} (at least one)")


# ----------------------------------------------------------------------------------- derivation

def node_edge_rows(node: int) -> slice:
    """Rows of the (14, n_ops) α array holding node `node`'s incoming edges; row j reads state j."""
    start = sum(2 + earlier for earlier in range(node))
    return slice(start, start + 2 + node)


# Node i's incoming edges are the α/β rows NODE_BOUNDS[i] .. NODE_BOUNDS[i + 1] - 1.
NODE_BOUNDS = tuple(node_edge_rows(node).start for node in range(NODES)) + (NUM_MIXED_EDGES,)


def _derive_cell(alphas, betas, primitives: Sequence[str], cell: str, max_skips: int | None = None,
                 op_weights=softmax_np) -> tuple[tuple[str, int], ...]:
    alphas = np.asarray(alphas, dtype=np.float64)
    betas = np.asarray(betas, dtype=np.float64)
    if alphas.shape != (NUM_MIXED_EDGES, len(primitives)):
        raise ValueError(f"alphas_{cell}: shape {alphas.shape}, expected ({NUM_MIXED_EDGES}, {len(primitives)}) "
                         f"for {len(primitives)} primitives")
    if betas.shape != (NUM_MIXED_EDGES,):
        raise ValueError(f"betas_{cell}: shape {betas.shape}, expected ({NUM_MIXED_EDGES},)")
    for name, values in ((f"alphas_{cell}", alphas), (f"betas_{cell}", betas)):
        bad_rows = np.flatnonzero(~np.isfinite(values.reshape(NUM_MIXED_EDGES, -1)).all(axis=1))
        if bad_rows.size:
            raise ValueError(f"{name}: non-finite values in rows {bad_rows.tolist()}; the search diverged, "
                             f"so no genotype can be derived")
    usable = np.array([p != NONE for p in primitives])
    if not usable.any():
        raise ValueError(f"primitives {list(primitives)}: no op other than {NONE!r} to choose")
    weights_ExO = op_weights(alphas) * edge_weights(betas, NODE_BOUNDS)[:, None]
    allowed_ExO = np.broadcast_to(usable, weights_ExO.shape).copy()
    while True:
        edges, rows = _strongest_edges(np.where(allowed_ExO, weights_ExO, -np.inf), primitives)
        skips = [(weights_ExO[row, primitives.index(op)], row) for (op, _), row in zip(edges, rows)
                 if op == SKIP]
        if max_skips is None or len(skips) <= max_skips:
            return tuple(edges)
        # P-DARTS' cap: the weakest chosen skip connection gives way to that edge's next best op.
        allowed_ExO[min(skips)[1], primitives.index(SKIP)] = False


def _strongest_edges(weights_ExO: np.ndarray, primitives: Sequence[str]):
    """The two strongest incoming edges of each node, with their ops, and the rows they were read from."""
    edges, rows = [], []
    for node in range(NODES):
        node_rows = node_edge_rows(node)
        weights = weights_ExO[node_rows]
        # Ties go to the lower source index (stable sort) and the earlier primitive (argmax takes the
        # first maximum), as upstream PC-DARTS's sorted() and strict `>` comparison do.
        strongest = np.argsort(-weights.max(axis=1), kind="stable")[:INPUTS_PER_NODE]
        edges += [(primitives[int(np.argmax(weights[source]))], int(source)) for source in strongest]
        rows += [node_rows.start + int(source) for source in strongest]
    return edges, rows


def derive_genotype(arch: Mapping, primitives: Sequence[str] = PRIMITIVES, max_skips: int | None = None,
                    op_weights=softmax_np) -> Genotype:
    """Discrete cells from α·β (spec §2.5); `arch` maps ARCH_KEYS to numpy or jax arrays.

    `max_skips` caps the skip connections of the normal cell (P-DARTS' remedy for collapse); None, the
    authors' derivation, has no cap. `op_weights` maps α to op strengths: softmax, as the authors, or the
    relaxation's own (relaxations.derivation_weights; σ(α) for Fair DARTS).
    """
    missing = [key for key in ARCH_KEYS if key not in arch]
    if missing:
        raise ValueError(f"arch: missing {missing}; expected keys {list(ARCH_KEYS)}")
    normal, reduce = (_derive_cell(arch[f"alphas_{cell}"], arch[f"betas_{cell}"], primitives, cell,
                                   max_skips if cell == "normal" else None, op_weights)
                      for cell in ("normal", "reduce"))
    return Genotype(normal, CONCAT, reduce, CONCAT)


PARAMETER_FREE = ("skip_connect", "max_pool_3x3", "avg_pool_3x3")


def collapse_diagnostics(arch: Mapping, primitives: Sequence[str] = PRIMITIVES, op_weights=softmax_np) -> dict:
    """Per cell: skip connections, pools and all parameter-free ops among the derived cell's 8 edges (a
    collapsed search derives mostly these, ranked by `op_weights` as derive_genotype), and the mean
    entropy of softmax(α) over the 14 edges."""
    genotype = derive_genotype(arch, primitives, op_weights=op_weights)
    figures = {}
    for cell in ("normal", "reduce"):
        ops = [op for op, _ in getattr(genotype, cell)]
        figures[f"{cell}_skip"] = ops.count("skip_connect")
        figures[f"{cell}_pool"] = sum(op in ("max_pool_3x3", "avg_pool_3x3") for op in ops)
        figures[f"{cell}_parameter_free"] = sum(op in PARAMETER_FREE for op in ops)
        figures[f"{cell}_alpha_entropy"] = float(softmax_entropy(arch[f"alphas_{cell}"]).mean())
    return figures


def _random_cell(rng: np.random.Generator, ops: list[str]) -> tuple[tuple[str, int], ...]:
    edges = []
    for node in range(NODES):
        sources = rng.choice(node + 2, size=INPUTS_PER_NODE, replace=False)
        edges += [(ops[int(rng.integers(len(ops)))], int(source)) for source in sources]
    return tuple(edges)


def random_genotype(seed: int, primitives: Sequence[str] = PRIMITIVES) -> Genotype:
    """A uniformly drawn valid cell pair: distinct inputs per node, ops other than 'none'."""
    ops = [p for p in primitives if p != NONE]
    if not ops:
        raise ValueError(f"primitives {list(primitives)}: no op other than {NONE!r} to choose")
    rng = np.random.default_rng(seed)
    normal = _random_cell(rng, ops)
    reduce = _random_cell(rng, ops)
    return Genotype(normal, CONCAT, reduce, CONCAT)
