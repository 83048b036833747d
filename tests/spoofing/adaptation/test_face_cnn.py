"""The face CNN's representation: the global max, with a finite gradient that goes to the arg max."""
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.spoofing.adaptation.face_cnn import FaceCNNConfig, face_backbone, global_max, init_face_cnn


def test_global_max_and_its_gradient():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(global_max(jnp.asarray(x))), x.max(axis=(1, 2)))
    grad = np.asarray(jax.jit(jax.grad(lambda v: global_max(v).sum()))(jnp.asarray(x)))
    flat = x.reshape(2, 12, 5)
    expected = np.zeros_like(flat)
    expected[np.arange(2)[:, None], flat.argmax(1), np.arange(5)[None, :]] = 1.0
    np.testing.assert_array_equal(grad, expected.reshape(x.shape))


def test_backbone_shapes_and_train_mode_statistics():
    config = FaceCNNConfig(channels=(4, 8))
    variables = init_face_cnn(0, config)
    faces = jnp.asarray(np.random.default_rng(1).uniform(size=(6, 25, 25)), jnp.float32)
    (logits, features), stats = face_backbone(config).forward(variables, faces, True, None)
    assert logits.shape == (6, 2) and features.shape == (6, 8)
    changed = jax.tree.map(lambda a, b: bool(np.any(np.asarray(a) != np.asarray(b))), stats, variables["batch_stats"])
    assert all(jax.tree.leaves(changed))
    (_, _), same = face_backbone(config).forward(variables, faces, False, None)
    assert same is variables["batch_stats"]
