"""Search spaces, one folder each; importing this package registers the built-in ones by name.

A space is a `darts_jax.engine.space.SearchSpace` record; `get_space(name)` picks one (`--space`).
"""
from darts_jax.engine.space import SearchSpace, get_space, register
from darts_jax.spaces import pcdarts2d  # noqa: F401  (registers "pcdarts")
from darts_jax.spaces import raw  # noqa: F401  (registers "raw")
from darts_jax.spaces import fusion  # noqa: F401  (registers "fusion")

DEFAULT_SPACE = "pcdarts"

__all__ = ["DEFAULT_SPACE", "SearchSpace", "get_space", "register"]
