"""Procedural faces with exact depth: a height field, Lambertian shading, and flat prints of a face.

Spec related_systems §4.5. A live face is a height field h(x, y) (an ellipsoid with a nose ridge, brows
and cheeks under a random pose) shaded as I = albedo · max(0, n(h)·l) + ambient, so its depth label is h
itself, the true scene depth (PRNet fits stand in for it on real data). A spoof is such a face image,
rendered under another (baked-in) light, printed on a flat plane and re-lit by the current light: a plane
has one normal, so its shading is one number times the printed image. Images are grayscale, as the
`lfw_subset` textures are, in [0, 1], float32, (size, size).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.ndimage import map_coordinates

# How tall the face is, relative to its half-width, when the normals are computed: a face is about as
# deep as half its width, which gives the shading its contrast.
RELIEF = 0.5


class Light(NamedTuple):
    direction: np.ndarray  # unit (x, y, z), z towards the camera
    ambient: float


class LiveFace(NamedTuple):
    image: np.ndarray  # (size, size) float32 in [0, 1]
    height: np.ndarray  # (size, size) float32 in [0, 1]: the normalised height field, 0 off the face
    albedo: np.ndarray  # (size, size) float32


def light_from_angles(azimuth_deg: float, elevation_deg: float, ambient: float) -> Light:
    """A directional light: azimuth in the image plane (0 = from the right, 90 = from above), elevation
    from the image plane towards the camera (90 = frontal)."""
    az, el = np.deg2rad(azimuth_deg), np.deg2rad(elevation_deg)
    direction = np.array([np.cos(el) * np.cos(az), -np.cos(el) * np.sin(az), np.sin(el)])
    return Light(direction / np.linalg.norm(direction), float(ambient))


def face_height_field(rng: np.random.Generator, size: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """(height (size, size) in [0, 1] with maximum 1, face coordinates (u, v)) of a random face.

    (u, v) are the pixel coordinates in the face's own frame (after the pose), the ellipse being
    u² + v² <= 1; the texture is mapped with them.
    """
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = 2 * (x + 0.5) / size - 1, 2 * (y + 0.5) / size - 1
    angle = np.deg2rad(rng.uniform(-12, 12))
    scale = rng.uniform(0.85, 1.05)
    dx, dy = rng.uniform(-0.06, 0.06, size=2)
    xr = (np.cos(angle) * (x - dx) + np.sin(angle) * (y - dy)) / scale
    yr = (-np.sin(angle) * (x - dx) + np.cos(angle) * (y - dy)) / scale
    half_width, half_height = rng.uniform(0.58, 0.68), rng.uniform(0.78, 0.88)
    u, v = xr / half_width, yr / half_height
    inside = 1.0 - u ** 2 - v ** 2
    height = np.sqrt(np.clip(inside, 0.0, None))

    def bump(cx, cy, sx, sy, amplitude):
        return amplitude * np.exp(-((u - cx) / sx) ** 2 - ((v - cy) / sy) ** 2)

    nose = bump(0.0, rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.16), rng.uniform(0.28, 0.38), rng.uniform(0.25, 0.4))
    brows = sum(bump(side * 0.4, -0.35, 0.22, 0.09, rng.uniform(0.06, 0.14)) for side in (-1, 1))
    cheeks = sum(bump(side * 0.45, 0.25, 0.2, 0.2, rng.uniform(0.05, 0.12)) for side in (-1, 1))
    eyes = sum(bump(side * 0.38, -0.15, 0.14, 0.08, -rng.uniform(0.05, 0.12)) for side in (-1, 1))
    height = np.where(inside > 0, height + nose + brows + cheeks + eyes, 0.0)
    height = np.clip(height, 0.0, None)
    return (height / height.max()).astype(np.float32), (u, v)


def surface_normals(height: np.ndarray) -> np.ndarray:
    """Unit normals (size, size, 3) of the surface z = RELIEF · height over the image square [-1, 1]²."""
    size = height.shape[0]
    dz_dy, dz_dx = np.gradient(RELIEF * height.astype(np.float64), 2.0 / size)
    # Image rows grow downwards, the light's y upwards: the row gradient flips sign.
    normals = np.stack([-dz_dx, dz_dy, np.ones_like(dz_dx)], axis=-1)
    return normals / np.linalg.norm(normals, axis=-1, keepdims=True)


def lambertian(albedo: np.ndarray, normals: np.ndarray, light: Light) -> np.ndarray:
    """albedo · max(0, n·l) + ambient, clipped to [0, 1]."""
    shading = np.clip(normals @ light.direction, 0.0, None)
    return np.clip(albedo * shading + light.ambient, 0.0, 1.0).astype(np.float32)


def face_albedo(rng: np.random.Generator, uv: tuple[np.ndarray, np.ndarray], texture: np.ndarray | None) -> np.ndarray:
    """Skin albedo on the ellipse (an LFW crop warped onto it when `texture` is given), a plain wall off it."""
    u, v = uv
    inside = u ** 2 + v ** 2 <= 1.0
    skin = rng.uniform(0.55, 0.85)
    if texture is not None:
        rows, cols = texture.shape
        # The crop's face spans about its central 80 %: the ellipse's box is mapped onto that span.
        coords = np.stack([(0.5 + 0.4 * v) * (rows - 1), (0.5 + 0.4 * u) * (cols - 1)])
        warped = map_coordinates(texture.astype(np.float64), coords, order=1, mode="nearest")
        skin = 0.35 + 0.6 * warped
    wall = rng.uniform(0.2, 0.5)
    return np.where(inside, skin, wall).astype(np.float32)


def render_live_face(rng: np.random.Generator, size: int = 32, light: Light | None = None,
                     texture: np.ndarray | None = None) -> LiveFace:
    """One live face: its image under `light` (random when None), its height field, its albedo.

    Draws from `rng` only, so the same generator state gives the same face.
    """
    height, uv = face_height_field(rng, size)
    albedo = face_albedo(rng, uv, texture)
    if light is None:
        light = light_from_angles(rng.uniform(0, 360), rng.uniform(35, 80), rng.uniform(0.05, 0.2))
    return LiveFace(lambertian(albedo, surface_normals(height), light), height, albedo)


def plane_normal(tilt_x_deg: float, tilt_y_deg: float) -> np.ndarray:
    """The unit normal of a flat print tilted by the given angles about the image axes."""
    tx, ty = np.deg2rad(tilt_x_deg), np.deg2rad(tilt_y_deg)
    normal = np.array([np.sin(ty), np.sin(tx), np.cos(tx) * np.cos(ty)])
    return normal / np.linalg.norm(normal)


def print_on_plane(printed: np.ndarray, normal: np.ndarray, light: Light) -> np.ndarray:
    """A printed image re-lit on a flat plane: every pixel shares the plane's shading max(0, n·l)."""
    shading = max(0.0, float(normal @ light.direction))
    return np.clip(printed * shading + light.ambient, 0.0, 1.0).astype(np.float32)
