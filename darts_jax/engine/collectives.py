"""The data-parallel axis, set in one place (`darts_jax.engine.parallel`) and read where sums are taken.

Steps and layers are written for one device. When `parallel` maps them over devices it traces them
inside `mapped_over(AXIS)`, and every batch sum (loss, gradients, BatchNorm statistics) becomes a sum
over the global batch. Outside it (a test, a plain `jax.jit`), the same code computes on its own batch
and no collective is emitted. The axis is read at trace time only, so compiled functions carry no state.
"""
from __future__ import annotations

import contextlib
import contextvars

from jax import lax

_AXIS: contextvars.ContextVar[str | None] = contextvars.ContextVar("darts_jax_axis", default=None)


@contextlib.contextmanager
def mapped_over(axis_name: str | None):
    token = _AXIS.set(axis_name)
    try:
        yield
    finally:
        _AXIS.reset(token)


def axis_name() -> str | None:
    """The named axis the function being traced is mapped over, or None on one device."""
    return _AXIS.get()


def global_sum(x):
    name = _AXIS.get()
    return x if name is None else lax.psum(x, name)


def global_mean(x):
    name = _AXIS.get()
    return x if name is None else lax.pmean(x, name)


def device_count():
    """Devices taking part in the current map (1 outside one), as a traced or static int."""
    name = _AXIS.get()
    return 1 if name is None else lax.psum(1, name)
