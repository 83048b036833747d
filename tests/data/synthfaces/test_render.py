"""The face renderer: live depth is the height field it shaded, attacks are flat with planar shading."""
import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from darts_jax.data.synthfaces import render
from darts_jax.data.synthfaces.faces import lfw_faces
from darts_jax.data.synthfaces.presentation import (
    CAMERA_BLUR, PresentationCorpusConfig, build_presentation_corpus, load_presentation_corpus,
    make_presentation_corpus, render_attack)


def test_live_depth_is_the_height_field_that_was_shaded():
    face = render.render_live_face(np.random.default_rng(5), 32, texture=lfw_faces()[3])
    height, _ = render.face_height_field(np.random.default_rng(5), 32)  # the same first draws
    np.testing.assert_array_equal(face.height, height)
    assert face.height.max() == 1.0 and face.height.min() == 0.0
    # Re-shade the label under a known light with an independent normal computation: the image is that.
    light = render.light_from_angles(30.0, 50.0, 0.1)
    again = render.render_live_face(np.random.default_rng(5), 32, light, lfw_faces()[3])
    gy, gx = np.gradient(render.RELIEF * again.height.astype(np.float64), 2.0 / 32)
    n = np.stack([-gx, gy, np.ones_like(gx)], -1)
    n /= np.sqrt((n ** 2).sum(-1, keepdims=True))
    expected = np.clip(again.albedo * np.clip(n @ light.direction, 0, None) + 0.1, 0, 1)
    np.testing.assert_allclose(again.image, expected, atol=1e-6)
    # The relief is visible: the shading varies across the face, unlike a plane's.
    assert (n @ light.direction)[again.height > 0.2].std() > 0.05


def test_attack_depth_is_zero_and_its_shading_is_planar():
    light, baked = render.light_from_angles(200.0, 60.0, 0.08), render.light_from_angles(20.0, 45.0, 0.12)
    photo_rng, attack_rng = np.random.default_rng(9), np.random.default_rng(9)
    # The photo went through the camera that took it before it was printed.
    photo = gaussian_filter(render.render_live_face(photo_rng, 32, baked, None).image, CAMERA_BLUR)
    tilt = photo_rng.uniform(-20, 20, size=2)  # render_attack's next draw
    attack = render_attack(attack_rng, "print", light, baked, 32, None, artefacts=False)
    # One shading factor for every pixel: image = c · photo + ambient, c = max(0, n_plane · l).
    c = max(0.0, float(render.plane_normal(*tilt) @ light.direction))
    np.testing.assert_allclose(attack, np.clip(c * photo + 0.08, 0, 1), atol=1e-6)
    design = np.stack([photo.ravel(), np.ones(photo.size)], 1)
    residual = np.linalg.lstsq(design, attack.ravel(), rcond=None)[1]
    assert residual[0] < 1e-8
    corpus = build_presentation_corpus(PresentationCorpusConfig(train_per_class=4, eval_per_class=3))
    for split in corpus.values():
        assert not split["depth"][split["label"] == 0].any()
        assert (split["depth"][split["label"] == 1].max(axis=(1, 2)) == 1.0).all()


def test_corpus_splits_are_seeded_and_as_specified():
    config = PresentationCorpusConfig(train_per_class=6, eval_per_class=4, seed=2)
    one, two = build_presentation_corpus(config), build_presentation_corpus(config)
    np.testing.assert_array_equal(one["test_cross"]["image"], two["test_cross"]["image"])
    other = build_presentation_corpus(PresentationCorpusConfig(train_per_class=6, eval_per_class=4, seed=3))
    assert not np.array_equal(one["train"]["image"], other["train"]["image"])
    assert set(one["train"]["attack"]) == {"live", "print"} and set(one["test_cross"]["attack"]) == {"live", "replay"}
    assert [len(one[s]["label"]) for s in ("train", "dev", "test_intra")] == [12, 8, 8]
    assert (one["train"]["label"] == (one["train"]["attack"] == "live")).all()


def test_corpus_is_cached_and_never_overwritten(tmp_path):
    config = PresentationCorpusConfig(train_per_class=3, eval_per_class=2)
    path = make_presentation_corpus(tmp_path, config, say=lambda _: None)
    before = path.stat().st_mtime_ns
    messages = []
    make_presentation_corpus(tmp_path, config, say=messages.append)
    assert "already holds this corpus" in messages[0] and path.stat().st_mtime_ns == before
    with pytest.raises(FileExistsError, match="not overwritten"):
        make_presentation_corpus(tmp_path, PresentationCorpusConfig(train_per_class=3, eval_per_class=2, seed=1))
    loaded = load_presentation_corpus(tmp_path)
    np.testing.assert_array_equal(loaded["dev"]["image"], build_presentation_corpus(config)["dev"]["image"])
    with pytest.raises(FileNotFoundError, match="make-synthetic-faces"):
        load_presentation_corpus(tmp_path / "missing")
