"""JAX's persistent compilation cache: compiled programs kept on disk, so that a resumed or repeated run
of the same program loads its steps instead of compiling them again.

JAX decides once per process, at its first compile, whether the cache is used, so `enable` has to run
before anything compiles (the command line calls it first). What the cache did is counted from JAX's
monitoring events; `summary` says how many compiles were loaded from it and the compile time saved.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.monitoring

from darts_jax.engine import workdir

NAME = "jax-compile-cache"  # the folder made beside a run's workdir by default
_EVENTS = {"/jax/compilation_cache/tasks_using_cache": "used",
           "/jax/compilation_cache/compile_requests_use_cache": "requests",
           "/jax/compilation_cache/cache_hits": "hits"}
_DURATIONS = {"/jax/compilation_cache/compile_time_saved_sec": "saved_s",
              "/jax/compilation_cache/cache_retrieval_time_sec": "retrieval_s"}


@dataclasses.dataclass
class CacheCounts:
    directory: Path | None = None
    used: int = 0  # 1 once JAX has decided to use the cache in this process
    requests: int = 0  # compiles that looked in the cache
    hits: int = 0
    saved_s: float = 0.0
    retrieval_s: float = 0.0


_counts = CacheCounts()
_listening = False


def _on_event(event: str, **kwargs) -> None:
    if event in _EVENTS:
        setattr(_counts, _EVENTS[event], getattr(_counts, _EVENTS[event]) + 1)


def _on_duration(event: str, seconds: float, **kwargs) -> None:
    if event in _DURATIONS:
        setattr(_counts, _DURATIONS[event], getattr(_counts, _DURATIONS[event]) + seconds)


def default_directory(workdir) -> Path:
    """The cache a run uses unless told otherwise: one folder beside its workdir, shared by its sibling runs."""
    return Path(workdir).resolve().parent / NAME


def enable(directory, min_compile_s: float = 1.0) -> Path | None:
    """Caches every program that took at least `min_compile_s` to compile in `directory` (made if
    missing); None or "none" leaves the cache off. Returns the folder used."""
    global _listening
    if directory is None or str(directory) == "none":
        return None
    path = workdir.prepare(directory, "--compile-cache")
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", float(min_compile_s))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not _listening:
        jax.monitoring.register_event_listener(_on_event)
        jax.monitoring.register_event_duration_secs_listener(_on_duration)
        _listening = True
    _counts.directory = path
    return path


def counts() -> CacheCounts:
    return dataclasses.replace(_counts)


def summary() -> str | None:
    """One line on what the cache did in this process, or None when it was not enabled."""
    c = _counts
    if c.directory is None:
        return None
    if not c.used:
        return (f"compilation cache {c.directory}: not used (nothing compiled yet, or JAX had compiled before "
                f"the cache was set)")
    return (f"compilation cache {c.directory}: {c.hits} of {c.requests} compiles loaded from it "
            f"({c.saved_s:.1f} s of compile time saved, {c.retrieval_s:.1f} s reading it)")
