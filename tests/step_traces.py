"""Counting traces of the step functions, the check that a compiled step is never traced twice."""
import functools

from darts_jax.tasks import search, train


def count_traces(patch, names) -> dict:
    """Wraps the task step `<name>` (of darts_jax.tasks.search or .train) for each name, through `patch`.

    The tasks look their step functions up when they compile, so steps compiled while the wrappers
    are in place keep counting after the patch (a pytest MonkeyPatch) is undone.
    Returns {name: traces so far}.
    """
    traces = dict.fromkeys(names, 0)
    for name in names:
        steps = search if hasattr(search, name) else train
        fn = getattr(steps, name)

        @functools.wraps(fn)
        def counted(*args, _name=name, _fn=fn, **kwargs):
            traces[_name] += 1
            return _fn(*args, **kwargs)

        patch.setattr(steps, name, counted)
    return traces
