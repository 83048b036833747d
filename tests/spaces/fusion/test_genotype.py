"""BM-NAS' v3 derivation on hand-made logits, the text and JSON forms, and their refusals."""
import json

import numpy as np
import pytest

from darts_jax.spaces.fusion.config import FUSION_OPS, FusionConfig
from darts_jax.spaces.fusion.genotype import (derive_genotype, genotype_from_dict, genotype_text, genotype_to_dict,
                                              load_genotype, parse_genotype_text, random_genotype)

CONFIG = FusionConfig()
TAPS = CONFIG.taps  # v1..v4, a1..a4


def _arch(skip_logits_step0, skip_logits_step1, beta=None, gamma=None):
    """α with 'none' logits 0 and the given skip logits; step 1 also has a row for step 0's output."""
    alpha = np.zeros((CONFIG.num_edges, 2))
    alpha[:8, 1] = skip_logits_step0
    alpha[8:16, 1] = skip_logits_step1
    alpha[16, 1] = 50.0  # step 1's row for step 0's output: never a candidate in v3
    beta = np.zeros((2, 5, 2)) if beta is None else beta
    gamma = np.zeros((2, 2, 4)) if gamma is None else gamma
    return {"alpha": alpha, "beta": beta, "gamma": gamma}


def test_each_step_takes_the_pair_of_largest_skip_weight_product():
    step0 = np.array([0, 3, 0, 0, 0, 0, 2.5, 0], float)  # v2 and a3 stand out
    step1 = np.array([0, 3, 0, 0, 0, 0, 2.5, 1.0], float)  # again v2, a3, then a4
    genotype = derive_genotype(_arch(step0, step1), CONFIG)
    assert genotype.steps[0].taps == ("v2", "a3")
    # (v2, a3) is used up by step 0, so step 1 takes the best pair with a new tap: v2 + a4.
    assert genotype.steps[1].taps == ("v2", "a4")


def test_the_product_rule_is_not_a_sum_rule():
    # Skip weights (softmax of [0, l]) 0.95, 0.95, 0.6, 0.6 for v1, v2 and a1, a2, others 0.5.
    logits = np.log(np.array([0.95, 0.95, 0.5, 0.5, 0.6, 0.6, 0.5, 0.5]) / (1 - np.array(
        [0.95, 0.95, 0.5, 0.5, 0.6, 0.6, 0.5, 0.5])))
    genotype = derive_genotype(_arch(logits, logits), CONFIG)
    assert genotype.steps[0].taps == ("v1", "v2")
    assert genotype.steps[1].taps == ("v1", "a1")  # 0.95 * 0.6 beats 0.6 * 0.6 and 0.5 * 0.95


def test_inner_steps_keep_the_two_strongest_predecessors_and_the_argmax_op():
    beta = np.zeros((2, 5, 2))
    beta[0, 2:5, 1] = [0.1, -2.0, 1.0]  # inner step 1 of node 0: x (0.1), y (-2), s0 (1.0) -> x, s0
    gamma = np.zeros((2, 2, 4))
    gamma[0, 0, FUSION_OPS.index("ConcatFC")] = 1.0
    gamma[0, 1, FUSION_OPS.index("ScaleDotAttn")] = 1.0
    gamma[1, :, FUSION_OPS.index("LinearGLU")] = 1.0
    genotype = derive_genotype(_arch(np.arange(8.0), np.arange(8.0), beta, gamma), CONFIG)
    node0 = genotype.steps[0].inner
    assert node0[0].inputs == (0, 1) and node0[0].op == "ConcatFC"
    assert node0[1].inputs == (0, 2) and node0[1].op == "ScaleDotAttn"
    assert [s.op for s in genotype.steps[1].inner] == ["LinearGLU", "LinearGLU"]
    assert genotype.steps[0].taps == ("a3", "a4")


def test_text_and_json_forms_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    for _ in range(20):
        genotype = random_genotype(rng, CONFIG)
        assert parse_genotype_text(genotype_text(genotype), CONFIG) == genotype
        assert genotype_from_dict(json.loads(json.dumps(genotype_to_dict(genotype))), CONFIG) == genotype
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(genotype_to_dict(genotype)))
    assert load_genotype(str(path), CONFIG) == genotype
    text = "v2+a3: ConcatFC(x,y), Sum(x,s0) | v1+a4: Sum(x,y), ScaleDotAttn(y,s0)"
    assert genotype_text(load_genotype(text, CONFIG)) == text


def test_random_genotypes_obey_the_v3_rule():
    rng = np.random.default_rng(1)
    for _ in range(50):
        first, second = random_genotype(rng, CONFIG).steps
        assert set(second.taps) - set(first.taps)


@pytest.mark.parametrize("text, message", [
    ("v2+z9: Sum(x,y), Sum(x,s0) | v1+a4: Sum(x,y), Sum(x,y)", "taps"),
    ("v2+a3: Sum(x,y), Sum(x,s1) | v1+a4: Sum(x,y), Sum(x,y)", "inputs must be among x, y, s0"),
    ("v2+a3: Max(x,y), Sum(x,s0) | v1+a4: Sum(x,y), Sum(x,y)", "op 'Max'"),
    ("v2+a3: Sum(x,y), Sum(x,s0)", "1 steps"),
    ("v2 a3 Sum", "is not 'tap\\+tap"),
])
def test_bad_genotypes_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message):
        parse_genotype_text(text, CONFIG)


def test_a_bad_json_genotype_names_the_file(tmp_path):
    path = tmp_path / "g.json"
    path.write_text('{"steps": [{"taps": ["v1"]}]}')
    with pytest.raises(ValueError, match="g.json"):
        load_genotype(str(path), CONFIG)
