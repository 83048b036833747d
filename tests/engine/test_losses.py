"""Class-weighted cross-entropy, reduced as PyTorch does: Σ w_y·nll / Σ w_y (spec §5.2)."""
import math

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax.engine.losses import weighted_cross_entropy, weighted_nll_terms

WEIGHTS = (1.0, 9.0)  # (spoof, bona fide)

# Rows whose softmax is easy by hand: (0, 0) -> (1/2, 1/2); (ln 3, 0) -> (3/4, 1/4); (0, ln 7) -> (1/8, 7/8).
LOGITS = np.array([[0.0, 0.0], [math.log(3), 0.0], [math.log(3), 0.0], [0.0, math.log(7)]], np.float32)
LABELS = np.array([1, 0, 1, 0], np.int32)
# nll per row: ln 2 (w 9), ln 4/3 (w 1), ln 4 (w 9), ln 8 (w 1).
HAND_NUMERATOR = 9 * math.log(2) + math.log(4 / 3) + 9 * math.log(4) + math.log(8)
HAND_DENOMINATOR = 20.0


def test_hand_checked_batch():
    numerator, denominator = weighted_nll_terms(jnp.asarray(LOGITS), jnp.asarray(LABELS), WEIGHTS)
    assert float(numerator) == pytest.approx(HAND_NUMERATOR, rel=1e-6)
    assert float(denominator) == HAND_DENOMINATOR
    loss = weighted_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS), WEIGHTS)
    assert float(loss) == pytest.approx(HAND_NUMERATOR / HAND_DENOMINATOR, rel=1e-6)


def test_padding_rows_are_left_out():
    valid = np.array([True, True, False, True])
    loss = weighted_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS), WEIGHTS, jnp.asarray(valid))
    expected = (9 * math.log(2) + math.log(4 / 3) + math.log(8)) / 11
    assert float(loss) == pytest.approx(expected, rel=1e-6)


def test_split_batch_terms_add_up_to_the_whole_batch():
    # What a data-parallel step relies on: halves with different class mixes, summed, give the whole batch.
    halves = [weighted_nll_terms(jnp.asarray(LOGITS[s]), jnp.asarray(LABELS[s]), WEIGHTS)
              for s in (slice(0, 1), slice(1, 4))]
    whole = weighted_cross_entropy(jnp.asarray(LOGITS), jnp.asarray(LABELS), WEIGHTS)
    split = sum(n for n, _ in halves) / sum(d for _, d in halves)
    assert float(split) == pytest.approx(float(whole), rel=1e-6)


def test_equal_weights_give_the_plain_mean():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((6, 2)).astype(np.float32)
    labels = rng.integers(0, 2, 6).astype(np.int32)
    loss = weighted_cross_entropy(jnp.asarray(logits), jnp.asarray(labels), (1.0, 1.0))
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    assert float(loss) == pytest.approx(float(expected), rel=1e-6)
