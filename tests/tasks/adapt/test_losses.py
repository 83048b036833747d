"""The adaptation loss terms against NumPy references written here."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax.tasks.adapt import losses
from darts_jax.tasks.adapt.step import prototypes_from_outputs


def _np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_kd_term_matches_the_hinton_formula():
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(0, 3, (16, 2)), rng.normal(0, 3, (16, 2))
    labels = rng.integers(0, 2, 16)
    T, alpha = 20.0, 0.5
    p_t = np.exp(_np_log_softmax(teacher / T))
    kl = (p_t * (np.log(p_t) - _np_log_softmax(student / T))).sum(-1).mean()
    ce = -_np_log_softmax(student)[np.arange(16), labels].mean()
    expected = alpha * T * T * kl + (1 - alpha) * ce
    got = losses.kd_term(jnp.asarray(student, jnp.float32), jnp.asarray(teacher, jnp.float32), jnp.asarray(labels),
                         T, alpha)
    assert abs(float(got) - expected) <= 1e-6 * max(1.0, abs(expected))


def _np_cells(logits, labels, phi):
    """Reference binning: loops over samples, (lo, hi] bins of the true class's probability."""
    p = np.exp(_np_log_softmax(logits))[np.arange(len(labels)), labels]
    edges = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    sums, counts = np.zeros((2, 5, phi.shape[1])), np.zeros((2, 5))
    for n in range(len(labels)):
        for b in range(5):
            if edges[b] < p[n] <= edges[b + 1]:
                sums[labels[n], b] += phi[n]
                counts[labels[n], b] += 1
    return sums, counts


def test_only_correct_in_bin_samples_enter_a_cell():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 2, (64, 2)).astype(np.float32)
    labels = rng.integers(0, 2, 64)
    phi = rng.normal(size=(64, 3)).astype(np.float32)
    sums, counts = losses.cell_sums(jnp.asarray(logits), jnp.asarray(labels), jnp.asarray(phi))
    ref_sums, ref_counts = _np_cells(logits, labels, phi)
    np.testing.assert_array_equal(np.asarray(counts), ref_counts)
    np.testing.assert_allclose(np.asarray(sums), ref_sums, rtol=1e-5, atol=1e-5)
    wrong = logits.argmax(-1) != labels
    assert wrong.any() and np.asarray(counts).sum() == (~wrong).sum()


def test_a_misclassified_sample_changes_no_cell():
    logits = jnp.asarray([[3.0, 0.0], [0.0, 3.0]])  # sample 1 (label 0) is wrong
    labels = jnp.asarray([0, 0])
    phi_a, phi_b = jnp.asarray([[1.0], [5.0]]), jnp.asarray([[1.0], [-7.0]])
    sums_a, counts_a = losses.cell_sums(logits, labels, phi_a)
    sums_b, counts_b = losses.cell_sums(logits, labels, phi_b)
    np.testing.assert_array_equal(np.asarray(sums_a), np.asarray(sums_b))
    assert float(counts_a.sum()) == 1.0


@pytest.mark.parametrize("prototype", ["scalar", "vector"])
def test_rel_is_exactly_zero_for_the_teacher_on_its_prototype_data_and_positive_after_a_perturbation(prototype):
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (50, 2)).astype(np.float32)
    labels = rng.integers(0, 2, 50).astype(np.int32)
    features = rng.normal(size=(50, 4)).astype(np.float32)
    protos = prototypes_from_outputs(logits, labels, features, prototype)
    phi = losses.representation(jnp.asarray(features), prototype)
    zero = losses.rel_term(jnp.asarray(logits), jnp.asarray(labels), phi, protos["means"], protos["counts"])
    assert float(zero) == 0.0
    perturbed = losses.representation(jnp.asarray(features + 0.1 * rng.normal(size=features.shape)), prototype)
    assert float(losses.rel_term(jnp.asarray(logits), jnp.asarray(labels), perturbed, protos["means"],
                                 protos["counts"])) > 0.0


def test_rel_with_empty_cells_is_finite_and_counts_only_cells_both_sides_have():
    # Teacher: only cell (class 0, bin 4) is filled; student batch: cells (0, 4) and (1, 0).
    teacher_means = np.zeros((2, 5, 1), np.float32)
    teacher_means[0, 4] = 2.0
    teacher_means[1, 0] = 100.0  # a stale value in a cell the teacher has no sample in: must be ignored
    teacher_counts = np.zeros((2, 5), np.float32)
    teacher_counts[0, 4] = 3
    logits = jnp.asarray([[5.0, 0.0], [5.0, 0.0], [0.0, 0.3]])  # p(true) = 0.993, 0.993, 0.574
    labels = jnp.asarray([0, 0, 1])
    phi = jnp.asarray([[1.0], [3.5], [9.0]])

    def loss(phi):
        return losses.rel_term(logits, labels, phi, jnp.asarray(teacher_means), jnp.asarray(teacher_counts))

    value, grad = jax.value_and_grad(loss)(phi)
    assert float(value) == pytest.approx((2.25 - 2.0) ** 2)
    assert np.isfinite(np.asarray(grad)).all() and float(grad[2, 0]) == 0.0
    empty = losses.rel_term(logits, labels, phi, jnp.zeros((2, 5, 1)), jnp.zeros((2, 5)))
    assert float(empty) == 0.0 and np.isfinite(float(empty))


def test_l2sp_term_against_numpy():
    rng = np.random.default_rng(3)
    params = {"body": {"w": rng.normal(size=(3, 2))}, "classifier": {"k": rng.normal(size=(2, 2))}}
    teacher = {"body": {"w": rng.normal(size=(3, 2))}, "classifier": {"k": rng.normal(size=(2, 2))}}
    logits = rng.normal(size=(8, 2))
    labels = rng.integers(0, 2, 8)
    ce = -_np_log_softmax(logits)[np.arange(8), labels].mean()
    gamma = 1 / (1 + np.exp(ce))
    expected = gamma * 0.5 * (((params["body"]["w"] - teacher["body"]["w"]) ** 2).sum()
                              + (params["classifier"]["k"] ** 2).sum())
    got = losses.l2sp_term(jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, teacher), ("classifier",),
                           jnp.asarray(logits), jnp.asarray(labels))
    assert float(got) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("shape, box_axes", [((32, 9, 11), 2), ((32, 40), 1)])
def test_cutmix_keeps_labels_and_touches_only_rows_whose_partner_differs(shape, box_axes):
    rng = np.random.default_rng(4)
    inputs = jnp.asarray(rng.normal(size=shape), jnp.float32)
    labels = jnp.asarray(rng.integers(0, 2, shape[0]))
    touched_any = False
    for seed in range(20):
        key = jax.random.key(seed)
        mixed_inputs, mixed_rows = losses.cutmix(key, inputs, labels, 1.0, box_axes)
        partner = np.asarray(jax.random.permutation(jax.random.split(key, 4)[1], shape[0]))
        changed = np.asarray((mixed_inputs != inputs).reshape(shape[0], -1).any(-1))
        differs = np.asarray(labels) != np.asarray(labels)[partner]
        assert not (changed & ~differs).any()  # never a same-label pair
        np.testing.assert_array_equal(np.asarray(mixed_rows), differs)
        changed_values = np.asarray(mixed_inputs)[changed]
        from_partner = np.asarray(inputs)[partner][changed]
        np.testing.assert_array_equal(changed_values[changed_values != np.asarray(inputs)[changed]],
                                      from_partner[changed_values != np.asarray(inputs)[changed]])
        touched_any |= changed.any()
    assert touched_any
    # Probability 0: nothing changes; labels are not an output at all, so they cannot be mixed.
    unchanged, rows = losses.cutmix(jax.random.key(0), inputs, labels, 0.0, box_axes)
    np.testing.assert_array_equal(np.asarray(unchanged), np.asarray(inputs))
    assert not np.asarray(rows).any()
