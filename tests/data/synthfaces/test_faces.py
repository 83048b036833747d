import numpy as np
import pytest

from darts_jax.data.synthfaces.faces import lfw_faces, split_by_image


def test_lfw_faces_are_the_first_hundred_crops_in_unit_range():
    from skimage.data import lfw_subset

    faces = lfw_faces()
    assert faces.shape == (100, 25, 25) and faces.dtype == np.float32
    np.testing.assert_array_equal(faces, lfw_subset()[:100].astype(np.float32))
    assert 0.0 <= faces.min() and faces.max() <= 1.0


def test_split_by_image_is_disjoint_complete_and_seeded():
    train, test = split_by_image(100, 0.7, seed=3)
    assert len(train) == 70 and len(test) == 30
    assert not set(train) & set(test) and set(train) | set(test) == set(range(100))
    np.testing.assert_array_equal(split_by_image(100, 0.7, seed=3)[0], train)
    assert not np.array_equal(split_by_image(100, 0.7, seed=4)[0], train)
    with pytest.raises(ValueError, match="leave one split empty"):
        split_by_image(3, 0.1, seed=0)
