"""The face-manipulation corpus: what each artefact changes, seeding, and never overwriting a corpus."""
import json

import numpy as np
import pytest

from darts_jax.data.synthfaces import manipulation as m


@pytest.fixture(scope="module")
def faces():
    return np.random.default_rng(0).uniform(0.2, 0.8, (6, 25, 25)).astype(np.float32)


def test_upsampling_artefact_is_blockwise_constant_plus_a_checkerboard_inside_the_region_only(faces):
    strength = 0.05
    out = m.upsampling_artefact(faces, strength)
    region = out[:, 4:20, 4:20]
    checker = strength * np.where(np.add.outer(np.arange(16), np.arange(16)) % 2, 1.0, -1.0)
    base = region - checker  # no clipping happens for faces in [0.2, 0.8]
    blocks = faces[:, 4:20, 4:20].reshape(6, 8, 2, 8, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(base, np.kron(blocks, np.ones((2, 2))), atol=1e-6)
    outside = np.ones((25, 25), bool)
    outside[4:20, 4:20] = False
    np.testing.assert_array_equal(out[:, outside], faces[:, outside])


def test_blending_artefact_brightens_the_lower_face_and_leaves_the_eyes(faces):
    flat = np.full((1, 25, 25), 0.4, np.float32)
    out = m.blending_artefact(flat, 0.2)
    # A flat face is its own smoothed copy, so the ellipse's centre (mask ~1) gets the whole shift.
    assert 0.58 <= out[0, 17, 12] <= 0.6 + 1e-6
    np.testing.assert_allclose(out[0, :6], 0.4, atol=1e-6)  # the top rows (eyes, forehead) are untouched
    assert (m.blending_artefact(faces, 0.0)[:, :6] == faces[:, :6]).all()


def test_augment_is_seeded_and_stays_in_range(faces):
    a = m.augment(faces, 10, np.random.default_rng(3))
    b = m.augment(faces, 10, np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    assert a.shape == (10, 25, 25) and a.min() >= 0.0 and a.max() <= 1.0


def test_corpus_is_reproducible_and_refuses_to_overwrite(tmp_path):
    first = m.build_manipulation_corpus(1, per_kind=(8, 4))
    second = m.build_manipulation_corpus(1, per_kind=(8, 4))
    for split in m.SPLITS:
        for kind in m.KINDS:
            np.testing.assert_array_equal(first[split][kind], second[split][kind])
    assert first["train"]["real"].shape == (8, 25, 25) and first["test"]["b"].shape == (4, 25, 25)
    path = m.make_manipulation_corpus(tmp_path / "faces", seed=1, per_kind=(8, 4))
    loaded = m.load_manipulation_corpus(tmp_path / "faces")
    np.testing.assert_array_equal(loaded["test"]["a"], first["test"]["a"])
    assert json.loads((tmp_path / "faces" / "manipulation.json").read_text())["seed"] == 1
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="manipulation.npz exists"):
        m.make_manipulation_corpus(tmp_path / "faces", seed=2, per_kind=(8, 4))
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="strength_b"):
        m.build_manipulation_corpus(0, strength_b=1.5)
