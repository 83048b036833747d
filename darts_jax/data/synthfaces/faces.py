"""The real faces every synthetic face corpus starts from: scikit-image's shipped LFW crops.

`skimage.data.lfw_subset()` holds 200 grayscale 25 x 25 images in [0, 1]; the first 100 are tight face
crops and the last 100 are non-face patches (checked visually, spec related_systems §3.8). No identity
labels ship and LFW repeats people, so splits by image index can leak identity; say so where it matters.
"""
from __future__ import annotations

import numpy as np

NUM_LFW_FACES = 100
LFW_FACE_SIZE = 25


def lfw_faces() -> np.ndarray:
    """The 100 LFW face crops, float32 (100, 25, 25) in [0, 1], in the order scikit-image ships them."""
    from skimage.data import lfw_subset

    images = np.asarray(lfw_subset(), dtype=np.float32)
    if images.shape != (2 * NUM_LFW_FACES, LFW_FACE_SIZE, LFW_FACE_SIZE):
        raise RuntimeError(f"skimage.data.lfw_subset() returned shape {images.shape}, expected "
                           f"(200, 25, 25); install the pinned scikit-image from requirements.txt")
    return images[:NUM_LFW_FACES]


def split_by_image(num_images: int, train_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint (train, test) image indices, shuffled by a seeded generator, so no image is in both."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order = np.random.default_rng(seed).permutation(num_images)
    cut = int(round(train_fraction * num_images))
    if cut in (0, num_images):
        raise ValueError(f"{num_images} images with train_fraction {train_fraction} leave one split empty")
    return np.sort(order[:cut]), np.sort(order[cut:])
