"""A pytree carried between steps as one flat buffer per dtype (`Packed`), unpacked inside the step's trace.

Dispatching a compiled step costs the host time per argument and result leaf. With the 1,155 leaves of a
4/16 K = 2 search state, the host spent 30-48 ms of each 350-450 ms step on the 2-core CPU dispatching its
two functions; packed, 2-5 ms. On a GPU, whose steps are short, such host time could exceed the step
(not measured: no GPU was at hand). Packed, a state is one leaf per dtype (three in a search: float32
values, int32 counters, uint32 key); the slices and the concatenation are ordinary ops in the step's
program. The layout (tree structure, shapes, dtypes) is the pytree's static part, so a step compiled
for one layout is never fed another.

The price is compile time: XLA compiled the 4/16 search steps 20-70 % longer with a packed state on the
2-core CPU, which is why `LoopConfig.packed_state` leaves CPU runs unpacked by default.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


@dataclasses.dataclass(frozen=True)
class Layout:
    treedef: Any
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[np.dtype, ...]

    def groups(self) -> list[tuple[np.dtype, list[int]]]:
        """(dtype, indices of its leaves) per buffer, in order of each dtype's first leaf."""
        groups: dict[np.dtype, list[int]] = {}
        for index, dtype in enumerate(self.dtypes):
            groups.setdefault(dtype, []).append(index)
        return list(groups.items())

    def describe(self) -> str:
        return f"{len(self.shapes)} leaves of " + ", ".join(str(dtype) for dtype, _ in self.groups())


def layout_of(tree) -> Layout:
    leaves, treedef = jax.tree.flatten(tree)
    return Layout(treedef, tuple(tuple(np.shape(leaf)) for leaf in leaves),
                  tuple(np.dtype(leaf.dtype) for leaf in leaves))


@jax.tree_util.register_pytree_node_class
class Packed:
    """`buffers[g]` holds the leaves of `layout.groups()[g]`, ravelled and concatenated in leaf order;
    the buffers may carry leading axes (a device axis once replicated)."""

    def __init__(self, buffers, layout: Layout):
        self.buffers = tuple(buffers)
        self.layout = layout

    def tree_flatten(self):
        return self.buffers, self.layout

    @classmethod
    def tree_unflatten(cls, layout, buffers):
        return cls(buffers, layout)


def pack(tree, xp=jnp) -> Packed:
    """`tree` packed with `xp` (jax.numpy inside a trace, numpy on the host)."""
    return pack_as(layout_of(tree), tree, xp)


def pack_as(layout: Layout, tree, xp=jnp) -> Packed:
    """`tree` packed in `layout`, which it must have: a step returns its state as it was given."""
    got = layout_of(tree)
    if got != layout:
        raise ValueError(f"a packed step must return its state in the layout it was given ({layout.describe()}); "
                         f"it returned {got.describe()}, or another structure or shapes")
    leaves = jax.tree.leaves(tree)
    return Packed([xp.concatenate([xp.ravel(leaves[i]) for i in indices]) for _, indices in layout.groups()],
                  layout)


def unpack(packed: Packed):
    """The pytree, as slices of the buffers (views on the host, slices in a trace); no leading axes."""
    layout = packed.layout
    leaves = [None] * len(layout.shapes)
    for buffer, (_, indices) in zip(packed.buffers, layout.groups()):
        offset = 0
        for i in indices:
            size = math.prod(layout.shapes[i])
            leaves[i] = buffer[offset:offset + size].reshape(layout.shapes[i])
            offset += size
    return jax.tree.unflatten(layout.treedef, leaves)
