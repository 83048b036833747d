"""Counting traces of the step functions, the check that a compiled step is never traced twice."""
import functools

from darts_jax import steps


def count_traces(patch, names) -> dict:
    """Wraps `darts_jax.steps.<name>` for each name, through `patch` (a pytest MonkeyPatch).

    darts_jax.parallel looks the step functions up when it compiles, so steps compiled while the
    wrappers are in place keep counting after the patch is undone. Returns {name: traces so far}.
    """
    traces = dict.fromkeys(names, 0)
    for name in names:
        fn = getattr(steps, name)

        @functools.wraps(fn)
        def counted(*args, _name=name, _fn=fn, **kwargs):
            traces[_name] += 1
            return _fn(*args, **kwargs)

        patch.setattr(steps, name, counted)
    return traces
