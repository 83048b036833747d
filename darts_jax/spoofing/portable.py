"""Portable model folders: the eval forward serialised as StableHLO with `jax.export`.

A portable folder holds
- `forward.stablehlo`: `jax.export.Exported.serialize()` of waveforms float32 (batch, num_samples) at
  sample_rate -> raw scores float32 (batch,) (the bona fide logit, spec §5.4), eval mode, weights
  baked in as constants; the batch dimension is symbolic, so any batch size runs without re-export;
- `portable.json`: format, num_samples, sample_rate, platforms, what the input and output are;
- `calibration.json` when exported with one (darts_jax.spoofing.calibration).

Running it needs JAX only, not darts_jax:

    exported = jax.export.deserialize(open("forward.stablehlo", "rb").read())
    scores = exported.call(waveforms_BxS)   # numpy or jax float32 array
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.spoofing.calibration import store_calibration
from darts_jax.spoofing.export import check_new_folder

FORMAT = "darts_jax-stablehlo-1"
MANIFEST = "portable.json"
FORWARD = "forward.stablehlo"
# CPU and CUDA: one file runs on either (jax.export lowers for each platform listed).
DEFAULT_PLATFORMS = ("cpu", "cuda")


def export_stablehlo(space, model, genotype, variables: dict, out_dir, calibration=None,
                     platforms=DEFAULT_PLATFORMS) -> Path:
    """Writes a portable folder for a derived network; refuses a folder that exists and is not empty."""
    out_dir = check_new_folder(out_dir)
    network = space.network(model, genotype)
    frozen = jax.tree.map(jnp.asarray, {"params": variables["params"], "batch_stats": variables["batch_stats"]})

    def forward(wave_BxS):
        logits, _ = network.apply(frozen, wave_BxS, train=False)
        return logits[:, 1]

    batch = jax.export.symbolic_shape("batch")[0]
    exported = jax.export.export(jax.jit(forward), platforms=tuple(platforms))(
        jax.ShapeDtypeStruct((batch, model.num_samples), jnp.float32))
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FORWARD).write_bytes(exported.serialize())
    manifest = {"format": FORMAT, "num_samples": model.num_samples, "sample_rate": model.sample_rate,
                "platforms": list(platforms),
                "input": f"float32 waveforms (batch, {model.num_samples}) in [-1, 1] at {model.sample_rate} Hz",
                "output": "float32 (batch,): the raw bona fide logit (higher = more bona fide)",
                "usage": "jax.export.deserialize(open('forward.stablehlo', 'rb').read()).call(waveforms)"}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    store_calibration(out_dir, calibration)
    return out_dir


def is_portable(model_dir) -> bool:
    return (Path(model_dir) / MANIFEST).is_file()


def load_stablehlo(model_dir):
    """(forward: waveforms (B, S) -> scores (B,), manifest) of a portable folder."""
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"{model_dir / MANIFEST}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    exported = jax.export.deserialize(bytearray((model_dir / FORWARD).read_bytes()))

    def forward(wave_BxS):
        return np.asarray(exported.call(np.asarray(wave_BxS, np.float32)))

    return forward, manifest
