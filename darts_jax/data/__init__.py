"""Corpora, audio and batching for darts_jax (numpy and soundfile only; no JAX or TensorFlow).

Modules: `protocols` (corpus readers), `audio` (decoding and fixed-length cuts), `loader` (batches),
`check` (whole-corpus validation) and `synthetic` (the SynthSpoof corpus). Import them directly.
"""
