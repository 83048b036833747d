"""Corpora, audio and batching for darts_jax: a leaf package (numpy, scipy and soundfile; no JAX, no
TensorFlow, nothing else of darts_jax).

Modules: `protocols` (corpus readers), `audio` (decoding and fixed-length cuts), `loader` (batches),
`check` (whole-corpus validation) and `synthspoof/` (the SynthSpoof corpus). Import them directly.
"""
