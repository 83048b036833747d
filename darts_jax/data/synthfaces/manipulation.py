"""A face-manipulation corpus for source-free adaptation: real faces and two synthetic manipulation types.

Real faces are scikit-image's LFW crops, split by image (no image is in both splits; LFW repeats people,
so identities may leak, see faces.py), augmented with flips, ±2 px shifts and noise. Manipulation A is
GAN-upsampling-like (a central face region down- then up-sampled 2×, plus a faint checkerboard of
amplitude `strength_a`); B is blending-like (an elliptical mouth and cheek region replaced by a
smoothed copy shifted in intensity by `strength_b`, behind a blurred seam). Each fake is made from its
own augmented view of a real face of its split, and the real class is the same for both types, as the
pristine videos are in FaceForensics++. Labels: 0 real, 1 fake. Spec: related_systems.md §3.8.

The defaults (no checkerboard, B brightened by 0.1) are the setting in which the adaptation protocol's
preconditions hold with a teacher that is unsure about B, as FaceForensics++ detectors are about an
unseen manipulation: a teacher of real vs up-sampling alone keys on lost fine detail, which B's smoothing
partly shares (zero-shot 58 % on B, median P(fake) 0.27 on B against 0.01 on real faces). With a
checkerboard of 0.06 (and B at 0.3, the former defaults) it keys on a cue B lacks and ranks B as more
real than real (EER 64 %), so its distillation targets say nothing about B.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from darts_jax.data.synthfaces.faces import LFW_FACE_SIZE, lfw_faces, split_by_image

KINDS = ("real", "a", "b")
SPLITS = ("train", "test")
_SHIFT = 2
_NOISE = 0.02
_REGION = slice(4, 20)  # A's central 16 x 16 region of a 25 x 25 crop


def augment(faces_NxHxW: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """`count` views of randomly chosen faces: horizontal flip (p = 0.5), shift of up to ±2 px (edge
    padding) and Gaussian noise (σ = 0.02), clipped to [0, 1]."""
    size = faces_NxHxW.shape[-1]
    padded = np.pad(faces_NxHxW, ((0, 0), (_SHIFT, _SHIFT), (_SHIFT, _SHIFT)), mode="edge")
    chosen = rng.integers(0, len(faces_NxHxW), count)
    dy, dx = rng.integers(0, 2 * _SHIFT + 1, (2, count))
    views = np.stack([padded[i, y:y + size, x:x + size] for i, y, x in zip(chosen, dy, dx)])
    flip = rng.random(count) < 0.5
    views[flip] = views[flip, :, ::-1]
    return np.clip(views + rng.normal(0.0, _NOISE, views.shape), 0.0, 1.0).astype(np.float32)


def upsampling_artefact(faces_NxHxW: np.ndarray, strength: float) -> np.ndarray:
    """Type A: the central region averaged over 2 × 2 blocks and repeated back (nearest up-sampling),
    plus a checkerboard of amplitude `strength` there."""
    out = faces_NxHxW.copy()
    region = out[:, _REGION, _REGION]
    n, h, w = region.shape
    coarse = region.reshape(n, h // 2, 2, w // 2, 2).mean(axis=(2, 4))
    checker = strength * np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2, 1.0, -1.0)
    out[:, _REGION, _REGION] = np.repeat(np.repeat(coarse, 2, axis=1), 2, axis=2) + checker
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def blending_artefact(faces_NxHxW: np.ndarray, strength: float) -> np.ndarray:
    """Type B: an ellipse over mouth and cheeks replaced by a smoothed (σ = 1 px) copy brightened by
    `strength`, blended in through a mask blurred by σ = 1.5 px (the seam)."""
    size = faces_NxHxW.shape[-1]
    rows, cols = np.mgrid[:size, :size]
    ellipse = (((rows - 0.68 * size) / (0.2 * size)) ** 2 + ((cols - size / 2) / (0.34 * size)) ** 2) <= 1.0
    mask = gaussian_filter(ellipse.astype(np.float64), 1.5)
    smoothed = gaussian_filter(faces_NxHxW.astype(np.float64), (0, 1.0, 1.0))
    out = faces_NxHxW * (1.0 - mask) + (smoothed + strength) * mask
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def build_manipulation_corpus(seed: int = 0, *, per_kind: tuple[int, int] = (1000, 500), strength_a: float = 0.0,
                              strength_b: float = 0.1, train_fraction: float = 0.7) -> dict:
    """{split: {kind: (count, 25, 25) float32}}, kinds real, a, b; `per_kind` = (train, test) counts.
    Every draw comes from one generator seeded with `seed`."""
    if min(per_kind) < 1 or len(per_kind) != 2:
        raise ValueError(f"per_kind: {per_kind} must be two positive counts (train, test)")
    for name, value in (("strength_a", strength_a), ("strength_b", strength_b)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name}: {value} must be in [0, 1]")
    faces = lfw_faces()
    rng = np.random.default_rng(seed)
    corpus = {}
    for split, indices, count in zip(SPLITS, split_by_image(len(faces), train_fraction, seed), per_kind):
        chosen = faces[indices]
        corpus[split] = {"real": augment(chosen, count, rng),
                         "a": upsampling_artefact(augment(chosen, count, rng), strength_a),
                         "b": blending_artefact(augment(chosen, count, rng), strength_b)}
    return corpus


def make_manipulation_corpus(out, seed: int = 0, *, per_kind: tuple[int, int] = (1000, 500),
                             strength_a: float = 0.0, strength_b: float = 0.1) -> Path:
    """Writes `build_manipulation_corpus` to OUT/manipulation.npz (arrays `<split>_<kind>`) with its
    settings in OUT/manipulation.json; an existing corpus there is refused, never overwritten."""
    out = Path(out)
    target, manifest = out / "manipulation.npz", out / "manipulation.json"
    for path in (target, manifest):
        if path.exists():
            raise FileExistsError(f"{path} exists; give another --out (nothing was overwritten)")
    corpus = build_manipulation_corpus(seed, per_kind=per_kind, strength_a=strength_a, strength_b=strength_b)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **{f"{split}_{kind}": corpus[split][kind] for split in SPLITS for kind in KINDS})
    manifest.write_text(json.dumps({"corpus": "synthetic face manipulations", "seed": seed, "per_kind": list(per_kind),
                                    "strength_a": strength_a, "strength_b": strength_b,
                                    "image_size": LFW_FACE_SIZE, "labels": {"real": 0, "a": 1, "b": 1}}, indent=2)
                        + "\n")
    return target


def load_manipulation_corpus(path) -> dict:
    """{split: {kind: images}} from a manipulation.npz (or the folder holding it), checked by name."""
    path = Path(path)
    path = path / "manipulation.npz" if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: make one with `darts-jax make-synthetic-faces --kind manipulation`")
    with np.load(path) as arrays:
        missing = [f"{s}_{k}" for s in SPLITS for k in KINDS if f"{s}_{k}" not in arrays]
        if missing:
            raise ValueError(f"{path}: missing arrays {missing}; it is not a manipulation corpus")
        return {split: {kind: arrays[f"{split}_{kind}"] for kind in KINDS} for split in SPLITS}
