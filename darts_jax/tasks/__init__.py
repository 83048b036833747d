"""Tasks, each with its own steps and config, driven by the one run driver (darts_jax.engine.driver):
`search` (bi-level architecture search), `train` (a derived network), `evaluate` (scores).
Each takes its search space as a `darts_jax.engine.space.SearchSpace` record."""
