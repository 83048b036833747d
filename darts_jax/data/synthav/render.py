"""SynthAV's video: LFW face crops whose mouth opening follows a speech plan, and face-region forgeries.

A clip is `FRAMES` grayscale frames of `FRAME_SIZE` px over one second. The mouth is a dark ellipse whose
height follows the voicing of the speech plan averaged over each frame's span, so a real clip's video and
audio are in sync. Forgeries touch the face region only, as face swaps and re-enactment do: a pasted face
whose blending leaves a seam, or an up-sampling checkerboard. Their strength is drawn per clip, and both
keep the frame's mean brightness, so no global statistic tells them apart.
"""
from __future__ import annotations

import functools

import numpy as np

from darts_jax.data.synthfaces.faces import lfw_faces

FRAMES = 8
FRAME_SIZE = 32
VIDEO_FORGERIES = ("seam", "checkerboard")
_FACE_BOX = (slice(7, 29), slice(6, 26))  # rows, columns of the swapped face region
_MOUTH_CENTRE = (23.5, 16.0)
_MOUTH_HALF_WIDTH = 5.5
_MOUTH_MAX_HALF_HEIGHT = 3.5
_NOISE_SD = 0.015


@functools.lru_cache(maxsize=1)
def face_images() -> np.ndarray:
    """The LFW crops resized to FRAME_SIZE (100, 32, 32) float32 in [0, 1] (read-only)."""
    from skimage.transform import resize

    faces = np.stack([resize(face, (FRAME_SIZE, FRAME_SIZE), order=1, anti_aliasing=False)
                      for face in lfw_faces()]).astype(np.float32)
    faces.setflags(write=False)
    return faces


def mouth_openings(voicing: np.ndarray, num_frames: int = FRAMES) -> np.ndarray:
    """(num_frames,) mouth opening in [0, 1]: the plan's voicing averaged over each frame's span, scaled by
    its largest value (jaw opening follows the voiced energy)."""
    spans = np.array_split(np.asarray(voicing, np.float64), num_frames)
    opening = np.array([span.mean() for span in spans])
    return opening / max(float(np.max(voicing)), 1e-9)


def _mouth_mask(opening: float, centre: tuple[float, float]) -> np.ndarray:
    rows, cols = np.mgrid[0:FRAME_SIZE, 0:FRAME_SIZE] + 0.5
    half_height = 0.6 + _MOUTH_MAX_HALF_HEIGHT * opening
    distance = ((rows - centre[0]) / half_height) ** 2 + ((cols - centre[1]) / _MOUTH_HALF_WIDTH) ** 2
    return np.clip(1.5 - distance, 0.0, 1.0)  # soft edge one pixel wide


def talking_face(face: np.ndarray, openings: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(frames, H, W) float frames of `face` with the mouth opening `openings[t]` in frame t, a little head
    motion (whole-pixel shifts), lighting flicker and sensor noise."""
    frames = []
    for opening in openings:
        frame = face.copy()
        mask = _mouth_mask(float(opening), _MOUTH_CENTRE)
        frame = frame * (1.0 - 0.85 * mask) + 0.05 * mask
        shift = rng.integers(-1, 2, size=2)
        frame = np.roll(frame, tuple(shift), axis=(0, 1))
        frame = frame * rng.uniform(0.97, 1.03) + rng.normal(0.0, _NOISE_SD, frame.shape)
        frames.append(frame)
    return np.clip(np.stack(frames), 0.0, 1.0)


def forge_face(face: np.ndarray, forgery: str, donor: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`face` with its face region forged (before the mouth is drawn, which the forger re-animates)."""
    rows, cols = _FACE_BOX
    region = face[rows, cols]
    if forgery == "seam":
        # The donor's region, levelled to the target's mean, pasted with a mask that is hard on one
        # randomly chosen side: the blending seam.
        pasted = donor[rows, cols] - donor[rows, cols].mean() + region.mean()
        weight = np.ones_like(region)
        ramp = np.linspace(0.0, 1.0, 3)
        weight[:3] *= ramp[:, None]
        weight[-3:] *= ramp[::-1, None]
        weight[:, :3] *= ramp[None, :]
        weight[:, -3:] *= ramp[None, ::-1]
        hard_side = rng.integers(4)
        edge = (slice(0, 1), slice(-1, None))[hard_side % 2]
        weight[(edge, slice(None)) if hard_side < 2 else (slice(None), edge)] = 1.0
        offset = rng.uniform(0.04, 0.1) * rng.choice([-1.0, 1.0])  # the colour mismatch that shows at the seam
        forged_region = weight * (pasted + offset * (weight < 1)) + (1 - weight) * region
    elif forgery == "checkerboard":
        # A generator's transposed-convolution up-sampling: half resolution, then a 2 x 2 periodic pattern.
        low = region.reshape(region.shape[0] // 2, 2, region.shape[1] // 2, 2).mean(axis=(1, 3))
        up = np.repeat(np.repeat(low, 2, axis=0), 2, axis=1)
        checker = (np.indices(region.shape).sum(axis=0) % 2) * 2.0 - 1.0
        forged_region = up + rng.uniform(0.03, 0.07) * checker * up
    else:
        raise ValueError(f"forgery: {forgery!r} is not one of {', '.join(VIDEO_FORGERIES)}")
    forged = face.copy()
    forged[rows, cols] = forged_region
    return forged


def to_uint8(frames: np.ndarray) -> np.ndarray:
    return np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
