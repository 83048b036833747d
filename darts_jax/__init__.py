"""darts_jax: differentiable architecture search for spoofing and deepfake detection, in JAX.

Layers, bottom up: `data` (corpora, a leaf), `engine` (generic: configs, state, steps, pmap, run driver,
checkpoints), `nn` and `relaxations`, `spaces` (search spaces, one folder each), `tasks` (search, train,
evaluate), `spoofing` (metrics, score files, pipelines, reports, model folders); `cli` on top.
"""

__version__ = "0.1.0"
