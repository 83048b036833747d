"""The presentation-attack corpus: live faces with their true depth, print and replay attacks with zero depth.

Spec related_systems §4.5. Splits mimic cross-dataset testing:
- `train`, `dev`: live faces and print attacks under illumination regime 1 (LFW textures of the train images);
- `test_intra`: the same domain, faces textured with the held-out LFW images;
- `test_cross`: replay attacks under illumination regime 2 (an unseen attack instrument and environment).
Attack artefacts (halftone, gamut, grain, blur; moiré, gamma, specular) are nuisance cues; the planar
shading of the attack against the relief of a live face is the geometric one. Built once per (seed,
settings) into `<out>/presentation.npz` with `corpus.json` beside it; an existing corpus of other
settings is refused, never overwritten.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from darts_jax.data.synthfaces import render
from darts_jax.data.synthfaces.faces import lfw_faces, split_by_image

CORPUS_FILE, META_FILE = "presentation.npz", "corpus.json"
SPLITS = ("train", "dev", "test_intra", "test_cross")
LIVE, SPOOF = 1, 0
CAMERA_BLUR = 0.5  # the capturing camera's optics (Gaussian sigma in pixels), on every image
# (azimuth range, elevation range, ambient range) in degrees and intensity; regime 2 lights from the other side.
REGIMES = {1: ((120.0, 240.0), (40.0, 75.0), (0.05, 0.15)), 2: ((-60.0, 60.0), (30.0, 60.0), (0.10, 0.25))}


@dataclasses.dataclass(frozen=True)
class PresentationCorpusConfig:
    seed: int = 0
    size: int = 32
    train_per_class: int = 800
    eval_per_class: int = 250  # dev, test_intra and test_cross, each
    textured_fraction: float = 0.8  # faces textured with an LFW crop; the rest have a plain albedo
    sensor_noise: float = 0.01  # camera noise on every image, live or attack
    train_faces_fraction: float = 0.7  # LFW images for train/dev textures; the rest texture the tests

    def __post_init__(self):
        for name in ("size", "train_per_class", "eval_per_class"):
            if getattr(self, name) < 1 or (name == "size" and self.size < 8):
                raise ValueError(f"{name} (--{name.replace('_', '-')}): {getattr(self, name)} is too small")
        if not 0.0 <= self.textured_fraction <= 1.0:
            raise ValueError(f"textured_fraction: {self.textured_fraction} must be in [0, 1]")


def regime_light(rng: np.random.Generator, regime: int) -> render.Light:
    (az_lo, az_hi), (el_lo, el_hi), (amb_lo, amb_hi) = REGIMES[regime]
    return render.light_from_angles(rng.uniform(az_lo, az_hi), rng.uniform(el_lo, el_hi), rng.uniform(amb_lo, amb_hi))


def print_artefacts(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A paper print: gamut compression, halftone dots, paper grain, mild blur."""
    low, high = rng.uniform(0.02, 0.08), rng.uniform(0.88, 0.96)
    image = low + (high - low) * image
    period = rng.integers(2, 4)
    y, x = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    dither = ((x % period) + (y % period) * period + 0.5) / period ** 2
    strength = rng.uniform(0.03, 0.1)
    image = (1 - strength) * image + strength * (image > dither)
    image = image + rng.normal(0.0, rng.uniform(0.005, 0.015), image.shape)
    return gaussian_filter(image, rng.uniform(0.3, 0.6))


def replay_artefacts(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """A screen replay: display gamma, moiré (a multiplicative grating), a specular reflection."""
    image = np.clip(image, 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    size = image.shape[0]
    y, x = np.mgrid[0:size, 0:size]
    angle, frequency = rng.uniform(0, np.pi), rng.uniform(0.15, 0.45)
    grating = np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
    image = image * (1 + rng.uniform(0.05, 0.15) * grating)
    cy, cx = rng.uniform(0, size, size=2)
    width = rng.uniform(0.15, 0.35) * size
    return image + rng.uniform(0.1, 0.3) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / width ** 2)


def render_attack(rng: np.random.Generator, kind: str, light: render.Light, baked: render.Light, size: int,
                  texture: np.ndarray | None, artefacts: bool = True) -> np.ndarray:
    """A face photographed under `baked`, presented flat: printed (re-lit by `light`) or replayed on a screen."""
    # The attack is an image of an image: the photo went through a camera (blur) before the medium.
    photo = gaussian_filter(render.render_live_face(rng, size, baked, texture).image, CAMERA_BLUR)
    normal = render.plane_normal(*rng.uniform(-20, 20, size=2))
    if kind == "print":
        return render.print_on_plane(print_artefacts(rng, photo) if artefacts else photo, normal, light)
    if kind == "replay":
        # A screen emits its image; the room's light adds its reflection off the flat glass.
        emitted = replay_artefacts(rng, photo) if artefacts else photo
        return render.print_on_plane(emitted, normal, light._replace(ambient=light.ambient + rng.uniform(0.0, 0.1)))
    raise ValueError(f"attack kind {kind!r}: expected 'print' or 'replay'")


def _render_split(rng, config, per_class, attack, regime, textures) -> dict:
    images, depths, attacks = [], [], []
    for index in range(2 * per_class):
        texture = textures[rng.integers(len(textures))] if rng.random() < config.textured_fraction else None
        light = regime_light(rng, regime)
        if index % 2 == 0:
            face = render.render_live_face(rng, config.size, light, texture)
            image, depth, name = face.image, face.height, "live"
        else:
            image = render_attack(rng, attack, light, regime_light(rng, regime), config.size, texture)
            depth, name = np.zeros((config.size, config.size), np.float32), attack
        captured = gaussian_filter(image, CAMERA_BLUR) + rng.normal(0.0, config.sensor_noise, image.shape)
        images.append(np.clip(captured, 0.0, 1.0))
        depths.append(depth)
        attacks.append(name)
    attacks = np.asarray(attacks)
    return {"image": np.asarray(images, np.float32), "depth": np.asarray(depths, np.float32),
            "label": np.where(attacks == "live", LIVE, SPOOF).astype(np.int32), "attack": attacks}


def build_presentation_corpus(config: PresentationCorpusConfig) -> dict[str, dict]:
    """Every split as arrays: image (N, size, size), depth (N, size, size), label (N,) 1 live, attack (N,)."""
    faces = lfw_faces()
    train_faces, test_faces = split_by_image(len(faces), config.train_faces_fraction, config.seed)
    # One generator per split, so changing one split's size leaves the others' images as they were.
    rngs = [np.random.default_rng([config.seed, index]) for index in range(len(SPLITS))]
    plan = {"train": (config.train_per_class, "print", 1, faces[train_faces]),
            "dev": (config.eval_per_class, "print", 1, faces[train_faces]),
            "test_intra": (config.eval_per_class, "print", 1, faces[test_faces]),
            "test_cross": (config.eval_per_class, "replay", 2, faces[test_faces])}
    return {split: _render_split(rng, config, *plan[split]) for split, rng in zip(SPLITS, rngs)}


def make_presentation_corpus(out: str | Path, config: PresentationCorpusConfig = PresentationCorpusConfig(),
                             say=print) -> Path:
    """Writes the corpus to `out` (created if missing) unless the same corpus is already there."""
    out = Path(out)
    meta = {"kind": "presentation", **dataclasses.asdict(config)}
    meta_path, corpus_path = out / META_FILE, out / CORPUS_FILE
    if meta_path.exists() or corpus_path.exists():
        existing = _read_meta(meta_path) if meta_path.exists() else None
        if existing == meta and corpus_path.exists():
            say(f"{corpus_path} already holds this corpus (seed {config.seed}); kept as it is")
            return corpus_path
        raise FileExistsError(f"{out} already holds another corpus ({meta_path if existing else corpus_path}); "
                              f"it is not overwritten: give another --out, or move that folder away")
    out.mkdir(parents=True, exist_ok=True)
    splits = build_presentation_corpus(config)
    np.savez_compressed(corpus_path, **{f"{split}/{key}": value for split, arrays in splits.items()
                                        for key, value in arrays.items()})
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    counts = ", ".join(f"{split} {len(arrays['label'])}" for split, arrays in splits.items())
    say(f"wrote {corpus_path}: {counts} images of {config.size} x {config.size}")
    return corpus_path


def _read_meta(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg}); move the folder away") from None


def load_presentation_corpus(data: str | Path) -> dict[str, dict]:
    """The splits of a corpus written by `make_presentation_corpus` (`data`: its folder or its .npz)."""
    path = Path(data)
    path = path / CORPUS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --data must be a folder made by "
                                f"`darts-jax make-synthetic-faces --kind presentation`")
    with np.load(path, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    splits = {}
    for split in SPLITS:
        missing = [key for key in ("image", "depth", "label", "attack") if f"{split}/{key}" not in arrays]
        if missing:
            raise ValueError(f"{path}: split {split!r} lacks {missing}; rebuild it with make-synthetic-faces")
        split_arrays = {key: arrays[f"{split}/{key}"] for key in ("image", "depth", "label", "attack")}
        count = len(split_arrays["label"])
        if any(len(v) != count for v in split_arrays.values()) or split_arrays["image"].shape != \
                split_arrays["depth"].shape:
            raise ValueError(f"{path}: split {split!r} has arrays of different lengths or shapes; rebuild it")
        splits[split] = split_arrays
    return splits
