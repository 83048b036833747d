"""The generic engine: configs, state, step helpers, compilation (pmap), the run driver, checkpoints and
logging. It knows no search space and nothing of spoofing: a space is handed to it as a
`space.SearchSpace` record, and the data-parallel axis through `collectives`."""
