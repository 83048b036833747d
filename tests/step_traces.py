"""Counting traces of the step functions, the check that a compiled step is never traced twice; and
compiling the search steps once for the runs of a module that differ only in their length."""
import dataclasses
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


def compile_search_steps_once(patch) -> None:
    """Makes darts_jax.tasks.search compile its steps once per (configuration, devices), through `patch`.

    The run length and bookkeeping (`config.loop`) are never read by the step functions (τ and the
    learning rate are arguments), so runs that differ only there share one compiled pair.
    """
    compiled = {}
    compile_steps = search.compile_search_steps

    def compile_once(space, config, devices):
        config = dataclasses.replace(config, loop=type(config.loop)())
        key = (space.name, config, tuple(devices))
        if key not in compiled:
            compiled[key] = compile_steps(space, config, devices)
        return compiled[key]

    patch.setattr(search, "compile_search_steps", compile_once)
