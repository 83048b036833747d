"""SynthAV: a built-in audio-visual deepfake corpus with FakeAVCeleb's four categories and a lip-sync one.

Each clip is one second: `render.FRAMES` frames of an LFW face whose mouth follows the voicing of a
SynthSpoof speech plan, and the 16 kHz audio of that plan. Categories:

- RVRA real video, real audio (label 1, the positive class); FVRA forged face region (seam or checkerboard),
  real audio; RVFA real video, audio spoofed by a SynthSpoof attack of the same plan (still in sync);
  FVFA both forged;
- LS lip-sync: a real video and real audio of the same speaker saying *another* plan. Each stream alone is
  drawn exactly as in RVRA, so only the two together tell it: the planted pair of the fusion search.

Splits use disjoint faces (`split_by_image`, LFW can repeat people) and disjoint speakers. Every clip draws
from its own seed (seed, split, index). `extra_lipsync_train` appends that many more RVRA and LS clips to
train (after the others, so the first clips are those of the corpus without them): the lip-sync task has
only the synchrony to learn from, and a few hundred clips of it are memorised rather than learnt.
`make_corpus` writes `synthav.json` (the manifest: every clip's category, face, speaker, attack and
forgery) and one `<split>.npz` per split, and reuses a complete corpus of the same version, size, seed
and extra clips.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from darts_jax.data.audio import SAMPLE_RATE
from darts_jax.data.protocols import TRAIN_ATTACKS
from darts_jax.data.synthav import render
from darts_jax.data.synthfaces.faces import NUM_LFW_FACES, split_by_image
from darts_jax.data.synthspoof.attacks import spoof
from darts_jax.data.synthspoof.channel import apply_channel, draw_channel
from darts_jax.data.synthspoof.speech import draw_speaker, plan_utterance
from darts_jax.data.synthspoof.speech import render as render_speech

FORMAT_VERSION = 2  # bump when generation changes, so an old cached corpus is not reused
MANIFEST = "synthav.json"
CATEGORIES = ("RVRA", "FVRA", "RVFA", "FVFA", "LS")
REAL = "RVRA"
SPLITS = ("train", "dev", "eval")
CLIP_SAMPLES = SAMPLE_RATE  # one second
SIZES = {"tiny": {"train": 8, "dev": 4, "eval": 4},  # clips per category and split
         "small": {"train": 100, "dev": 40, "eval": 60},
         "medium": {"train": 400, "dev": 100, "eval": 100}}
_SPEAKERS = {"train": (0, 24), "dev": (100, 110), "eval": (200, 212)}  # disjoint speaker numbers
_FACE_SPLIT = {"train": 0, "dev": 1, "eval": 2}


class Split(NamedTuple):
    clip_ids: np.ndarray  # str
    categories: np.ndarray  # str, one of CATEGORIES
    labels: np.ndarray  # int32, 1 real (RVRA), 0 fake
    frames_NxTxHxW: np.ndarray  # float32 in [0, 1]
    audio_NxS: np.ndarray  # float32 in [-1, 1]


def split_faces(seed: int) -> dict[str, np.ndarray]:
    """Disjoint LFW face indices of each split (60 / 20 / 20)."""
    train, rest = split_by_image(NUM_LFW_FACES, 0.6, seed)
    order = np.random.default_rng([seed, 3]).permutation(rest)
    return {"train": train, "dev": np.sort(order[:rest.size // 2]), "eval": np.sort(order[rest.size // 2:])}


def _speech(plan, speaker, attack: str | None, rng: np.random.Generator) -> np.ndarray:
    speech = render_speech(plan, speaker, rng) if attack is None else spoof(attack, plan, speaker, rng)
    # The whole second is speech (no leading silence), so the plan's timing is the audio's.
    channel = dataclasses.replace(draw_channel(rng), speech_samples=CLIP_SAMPLES, lead_samples=0, trail_samples=0)
    return np.round(np.clip(apply_channel(speech, channel, rng), -1.0, 1.0) * 32767.0).astype(np.int16)


def make_clip(seed: int, split: str, index: int, category: str, faces: np.ndarray):
    """(frames uint8 (T, H, W), audio int16 (CLIP_SAMPLES,), manifest record) of one clip."""
    if category not in CATEGORIES:
        raise ValueError(f"category: {category!r} is not one of {', '.join(CATEGORIES)}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split), index]))
    low, high = _SPEAKERS[split]
    speaker_number = int(rng.integers(low, high))
    speaker = draw_speaker(np.random.default_rng([seed, 11, speaker_number]))
    plan = plan_utterance(speaker, CLIP_SAMPLES, rng)
    fake_video, fake_audio = category in ("FVRA", "FVFA"), category in ("RVFA", "FVFA")
    attack = str(TRAIN_ATTACKS[rng.integers(len(TRAIN_ATTACKS))]) if fake_audio else None
    # Lip-sync: the same speaker's real voice saying another utterance.
    audio_plan = plan_utterance(speaker, CLIP_SAMPLES, rng) if category == "LS" else plan
    audio = _speech(audio_plan, speaker, attack, rng)
    face_index, donor_index = (int(i) for i in rng.choice(faces, size=2, replace=False))
    face = render.face_images()[face_index]
    forgery = str(render.VIDEO_FORGERIES[rng.integers(len(render.VIDEO_FORGERIES))]) if fake_video else None
    if forgery is not None:
        face = render.forge_face(face, forgery, render.face_images()[donor_index], rng)
    frames = render.talking_face(face, render.mouth_openings(plan.voicing), rng)
    record = {"clip_id": f"{split}_{index:05d}", "category": category, "label": int(category == REAL),
              "face": face_index, "speaker": speaker_number, "attack": attack or "-", "forgery": forgery or "-"}
    return render.to_uint8(frames), audio, record


LIPSYNC_CATEGORIES = (REAL, "LS")
# Manifest settings a corpus written before they existed had at these values.
_SETTING_DEFAULTS = {"extra_lipsync_train": 0}


def _expected_manifest(size: str, seed: int, extra_lipsync_train: int) -> dict:
    return {"format_version": FORMAT_VERSION, "size": size, "seed": seed,
            "frames": render.FRAMES, "frame_size": render.FRAME_SIZE, "sample_rate": SAMPLE_RATE,
            "clip_samples": CLIP_SAMPLES, "extra_lipsync_train": extra_lipsync_train}


def split_categories(size: str, split: str, seed: int, extra_lipsync_train: int = 0) -> np.ndarray:
    """The category of every clip of a split, in clip order: SIZES' clips of each category in a seeded order
    (a split sorted by category would give the label away by position), then for train the extra RVRA and
    LS clips in an order of their own."""
    categories = np.repeat(CATEGORIES, SIZES[size][split])
    categories = categories[np.random.default_rng([seed, 5, SPLITS.index(split)]).permutation(categories.size)]
    if split != "train" or not extra_lipsync_train:
        return categories
    extra = np.repeat(LIPSYNC_CATEGORIES, extra_lipsync_train)
    return np.concatenate([categories, extra[np.random.default_rng([seed, 6]).permutation(extra.size)]])


def make_corpus(out_dir: str | Path, size: str = "small", seed: int = 0, say=print, *,
                extra_lipsync_train: int = 0) -> Path:
    """Writes SynthAV to `out_dir` (or reuses it when complete with the same settings); returns the folder.

    A folder holding anything else is refused, so nothing a user has is overwritten.
    """
    if size not in SIZES:
        raise ValueError(f"size: {size!r} is not one of {', '.join(SIZES)}")
    if not isinstance(extra_lipsync_train, int) or extra_lipsync_train < 0:
        raise ValueError(f"extra_lipsync_train (--extra-lipsync-train): {extra_lipsync_train!r} must be a whole "
                         f"number of clips, at least 0")
    out = Path(out_dir)
    manifest_path = out / MANIFEST
    expected = _expected_manifest(size, seed, extra_lipsync_train)
    if manifest_path.exists():
        found = _read_manifest(out)
        settings = {k: found.get(k, _SETTING_DEFAULTS.get(k)) for k in expected}
        if settings == expected and all((out / f"{split}.npz").is_file() for split in SPLITS):
            say(f"{out}: SynthAV ({size}, seed {seed}) is already there; reusing it")
            return out
        raise ValueError(f"{manifest_path}: holds SynthAV with {settings}, not {expected}; choose another --out "
                         f"(nothing was overwritten)")
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out}: the folder is not empty and holds no SynthAV manifest; choose another --out "
                         f"(nothing was overwritten)")
    out.mkdir(parents=True, exist_ok=True)
    faces = split_faces(seed)
    clips = {}
    for split in SPLITS:
        categories = split_categories(size, split, seed, extra_lipsync_train)
        made = [make_clip(seed, split, index, str(category), faces[split]) for index, category in enumerate(categories)]
        frames, audio, records = zip(*made)
        _write_atomic(out / f"{split}.npz", lambda f, fr=frames, au=audio, rec=records: np.savez_compressed(
            f, frames=np.stack(fr), audio=np.stack(au), labels=np.array([r["label"] for r in rec], np.int32)))
        clips[split] = list(records)
        extra = f", and {extra_lipsync_train} more RVRA and LS" if split == "train" and extra_lipsync_train else ""
        say(f"{out}: {split}: {len(records)} clips ({SIZES[size][split]} per category{extra})")
    manifest = {**expected, "categories": list(CATEGORIES), "faces": {k: v.tolist() for k, v in faces.items()},
                "clips": clips}
    _write_atomic(manifest_path, lambda f: f.write(json.dumps(manifest, indent=1).encode()))
    return out


def _write_atomic(path: Path, write) -> None:
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        write(handle)
    os.replace(partial, path)


def _read_manifest(root: Path) -> dict:
    path = root / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: --data must be a SynthAV folder from "
                                f"`darts-jax make-synthetic-av --out DIR`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: line {err.lineno}: not valid JSON ({err.msg})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {manifest.get('format_version')!r}, this darts-jax reads "
                         f"{FORMAT_VERSION}; make the corpus again into a new folder")
    return manifest


def load_split(root: str | Path, split: str) -> Split:
    """One split of a SynthAV folder, checked against its manifest."""
    if split not in SPLITS:
        raise ValueError(f"split: {split!r} is not one of {', '.join(SPLITS)}")
    root = Path(root)
    records = _read_manifest(root).get("clips", {}).get(split)
    path = root / f"{split}.npz"
    if records is None or not path.is_file():
        raise FileNotFoundError(f"{path} or its entry in {root / MANIFEST} is missing; make the corpus again")
    with np.load(path) as arrays:
        frames, audio, labels = arrays["frames"], arrays["audio"], arrays["labels"]
    manifest_labels = np.array([r["label"] for r in records], np.int32)
    if len(records) != len(frames) or not np.array_equal(labels, manifest_labels):
        raise ValueError(f"{path}: {len(frames)} clips whose labels do not match the {len(records)} of "
                         f"{root / MANIFEST}; the corpus is damaged, make it again")
    return Split(np.array([r["clip_id"] for r in records]), np.array([r["category"] for r in records]), labels,
                 frames.astype(np.float32) / 255.0, audio.astype(np.float32) / 32768.0)
