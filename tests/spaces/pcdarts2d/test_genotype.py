import json
import re

import numpy as np
import pytest

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import ARCH_KEYS, Genotype, derive_genotype, random_genotype, validate
from darts_jax.spaces.pcdarts2d.genotype_text import KNOWN_GENOTYPES, load_genotype, parse_genotype

# Spec Appendix, exactly as the authors' PyTorch code prints it.
APPENDIX_LFCC = (
    "Genotype(normal=[('sep_conv_5x5', 0), ('sep_conv_5x5', 1), ('sep_conv_3x3', 2), ('dil_conv_5x5', 0), "
    "('avg_pool_3x3', 2), ('max_pool_3x3', 3), ('avg_pool_3x3', 2), ('avg_pool_3x3', 4)], "
    "normal_concat=range(2, 6), reduce=[('sep_conv_5x5', 1), ('sep_conv_3x3', 0), ('dil_conv_3x3', 2), "
    "('avg_pool_3x3', 0), ('dil_conv_5x5', 2), ('sep_conv_3x3', 3), ('dil_conv_3x3', 2), ('avg_pool_3x3', 4)], "
    "reduce_concat=range(2, 6))"
)
LFCC_NORMAL = (("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 0),
               ("avg_pool_3x3", 2), ("max_pool_3x3", 3), ("avg_pool_3x3", 2), ("avg_pool_3x3", 4))
LFCC_REDUCE = (("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2), ("avg_pool_3x3", 0),
               ("dil_conv_5x5", 2), ("sep_conv_3x3", 3), ("dil_conv_3x3", 2), ("avg_pool_3x3", 4))
APPENDIX_RAW = (
    "Genotype(normal=[('dil_conv_5', 1), ('dil_conv_3', 0), ('dil_conv_5', 1), ('dil_conv_5', 2), "
    "('std_conv_5', 2), ('skip_connect', 3), ('std_conv_5', 2), ('skip_connect', 4)], normal_concat=range(2, 6), "
    "reduce=[('max_pool_3', 0), ('std_conv_3', 1), ('dil_conv_3', 0), ('dil_conv_3', 2), ('skip_connect', 0), "
    "('dil_conv_5', 2), ('dil_conv_3', 0), ('avg_pool_3', 1)], reduce_concat=range(2, 6))"
)
RAW_PRIMITIVES = ("none", "max_pool_3", "avg_pool_3", "skip_connect", "std_conv_3", "std_conv_5",
                  "dil_conv_3", "dil_conv_5")
NODE_START = (0, 2, 5, 9)  # first α row of each node; row start + j is the edge from state j


def _alphas(entries, primitives=PRIMITIVES):
    """(14, n_ops) zeros with logits[(node, source, op)] = value."""
    alphas = np.zeros((14, len(primitives)))
    for (node, source, op), value in entries.items():
        alphas[NODE_START[node] + source, primitives.index(op)] = value
    return alphas


def _betas(entries):
    betas = np.zeros(14)
    for (node, source), value in entries.items():
        betas[NODE_START[node] + source] = value
    return betas


def _arch(alphas_normal, betas_normal=None, alphas_reduce=None, betas_reduce=None):
    zeros = np.zeros(14)
    return {"alphas_normal": alphas_normal, "betas_normal": zeros if betas_normal is None else betas_normal,
            "alphas_reduce": np.zeros_like(alphas_normal) if alphas_reduce is None else alphas_reduce,
            "betas_reduce": zeros if betas_reduce is None else betas_reduce}


# With uniform β an edge's strength grows with its single raised logit, so the winners are known.
CLEAR_ALPHAS = {
    (0, 0, "skip_connect"): 1.0, (0, 1, "sep_conv_3x3"): 4.0,
    (1, 0, "max_pool_3x3"): 3.0, (1, 2, "avg_pool_3x3"): 5.0,
    (2, 1, "sep_conv_5x5"): 2.0, (2, 3, "dil_conv_5x5"): 4.0, (2, 0, "dil_conv_3x3"): 1.0,
    (3, 2, "sep_conv_3x3"): 5.0, (3, 4, "skip_connect"): 6.0, (3, 0, "max_pool_3x3"): 0.5,
}
CLEAR_CELL = (("sep_conv_3x3", 1), ("skip_connect", 0), ("avg_pool_3x3", 2), ("max_pool_3x3", 0),
              ("dil_conv_5x5", 3), ("sep_conv_5x5", 1), ("skip_connect", 4), ("sep_conv_3x3", 2))
# All logits equal: the documented tie rule (lower source, earlier primitive) decides.
TIED_CELL = tuple((PRIMITIVES[1], source) for _ in range(4) for source in (0, 1))


def test_derive_known_winners_strongest_first():
    genotype = derive_genotype(_arch(_alphas(CLEAR_ALPHAS)))
    assert genotype.normal == CLEAR_CELL
    assert genotype.reduce == TIED_CELL
    assert genotype.normal_concat == genotype.reduce_concat == (2, 3, 4, 5)


def test_derive_reads_each_cell_from_its_own_arrays():
    arch = _arch(_alphas(CLEAR_ALPHAS))
    swapped = {"alphas_normal": arch["alphas_reduce"], "alphas_reduce": arch["alphas_normal"],
               "betas_normal": arch["betas_reduce"], "betas_reduce": arch["betas_normal"]}
    genotype = derive_genotype(swapped)
    assert genotype.normal == TIED_CELL
    assert genotype.reduce == CLEAR_CELL


def test_derive_beta_changes_winning_edges():
    alphas = _alphas({(1, 0, "max_pool_3x3"): 3.0, (1, 1, "sep_conv_3x3"): 2.0, (1, 2, "avg_pool_3x3"): 1.0})
    alpha_only = derive_genotype(_arch(alphas)).normal
    assert alpha_only[2:4] == (("max_pool_3x3", 0), ("sep_conv_3x3", 1))
    # softmax(β) = (0.045, 0.045, 0.91) over node 1 makes the weakest α edge the strongest product.
    with_beta = derive_genotype(_arch(alphas, betas_normal=_betas({(1, 2): 3.0}))).normal
    assert with_beta[2:4] == (("avg_pool_3x3", 2), ("max_pool_3x3", 0))
    assert with_beta[:2] == alpha_only[:2] and with_beta[4:] == alpha_only[4:]


def test_derive_skips_none_for_ranking_and_for_the_op():
    alphas = _alphas({
        # node 0 keeps both edges; on source 0 'none' dominates but the op must be dil_conv_3x3.
        (0, 0, "none"): 8.0, (0, 0, "dil_conv_3x3"): 4.0, (0, 1, "sep_conv_3x3"): 1.0,
        # node 1: source 0 holds the largest entry of all ('none') yet the weakest non-'none' one.
        (1, 0, "none"): 10.0, (1, 0, "sep_conv_5x5"): 5.0,
        (1, 1, "skip_connect"): 2.0, (1, 2, "max_pool_3x3"): 1.0,
    })
    normal = derive_genotype(_arch(alphas)).normal
    assert normal[0:2] == (("sep_conv_3x3", 1), ("dil_conv_3x3", 0))
    assert normal[2:4] == (("skip_connect", 1), ("max_pool_3x3", 2))


def test_derive_finds_none_by_name_in_any_primitive_order():
    primitives = ("conv_a", "none", "conv_b")
    alphas = _alphas({(0, 0, "none"): 9.0, (0, 0, "conv_b"): 1.0, (0, 1, "conv_a"): 2.0}, primitives)
    genotype = derive_genotype(_arch(alphas), primitives)
    assert genotype.normal[:2] == (("conv_a", 1), ("conv_b", 0))
    assert all(op != "none" for op, _ in genotype.normal + genotype.reduce)


def test_derive_tie_rule_lower_source_then_earlier_primitive():
    # Sources 2 and 3 of node 2 carry identical rows (exact ties) holding two equal maxima each.
    alphas = _alphas({(2, source, op): 3.0 for source in (2, 3) for op in ("sep_conv_5x5", "sep_conv_3x3")})
    normal = derive_genotype(_arch(alphas)).normal
    assert normal[4:6] == (("sep_conv_3x3", 2), ("sep_conv_3x3", 3))


def test_derive_accepts_jax_arrays():
    import jax.numpy as jnp

    arch = _arch(_alphas(CLEAR_ALPHAS), betas_normal=_betas({(1, 2): 3.0}))
    on_device = {key: jnp.asarray(value, dtype=jnp.float32) for key, value in arch.items()}
    assert derive_genotype(on_device) == derive_genotype(arch)


def test_derive_random_arch_gives_valid_distinct_inputs():
    rng = np.random.default_rng(0)
    for _ in range(20):
        arch = {key: 1e-3 * rng.standard_normal((14, 8) if key.startswith("alphas") else 14) for key in ARCH_KEYS}
        genotype = derive_genotype(arch)
        validate(genotype)
        for cell in (genotype.normal, genotype.reduce):
            assert all(cell[2 * node][1] != cell[2 * node + 1][1] for node in range(4))


@pytest.mark.parametrize("change, match", [
    (lambda a: a.pop("betas_reduce"), r"missing \['betas_reduce'\]"),
    (lambda a: a.update(alphas_normal=np.zeros((14, 7))), r"alphas_normal: shape \(14, 7\), expected \(14, 8\)"),
    (lambda a: a.update(betas_reduce=np.zeros(13)), r"betas_reduce: shape \(13,\), expected \(14,\)"),
    (lambda a: a["alphas_reduce"].__setitem__((6, 2), np.nan), r"alphas_reduce: non-finite values in rows \[6\]"),
])
def test_derive_rejects_bad_arch(change, match):
    arch = _arch(np.zeros((14, 8)))
    change(arch)
    with pytest.raises(ValueError, match=match):
        derive_genotype(arch)


# ------------------------------------------------------------------------------ text and JSON

def test_appendix_string_parses_to_published_genotype():
    genotype = parse_genotype(APPENDIX_LFCC)
    assert genotype == Genotype(LFCC_NORMAL, (2, 3, 4, 5), LFCC_REDUCE, (2, 3, 4, 5))
    assert KNOWN_GENOTYPES["pcdarts-lfcc"] == genotype


def test_string_json_string_round_trip():
    genotype = parse_genotype(APPENDIX_LFCC)
    assert Genotype.from_json(genotype.to_json()).to_string() == APPENDIX_LFCC
    assert Genotype.from_json(json.loads(genotype.to_json())) == genotype


def test_parse_tolerates_layout_quotes_list_concat_and_field_order():
    text = """
        Genotype(
            reduce=[("sep_conv_5x5", 1), ('sep_conv_3x3', 0), ('dil_conv_3x3', 2), ('avg_pool_3x3', 0),
                    ('dil_conv_5x5', 2), ('sep_conv_3x3', 3), ('dil_conv_3x3', 2), ('avg_pool_3x3', 4),],
            normal = [ ('sep_conv_5x5',0),('sep_conv_5x5',1),('sep_conv_3x3',2),('dil_conv_5x5',0),
                       ('avg_pool_3x3',2),('max_pool_3x3',3),('avg_pool_3x3',2),('avg_pool_3x3',4) ],
            normal_concat=[2, 3, 4, 5],
            reduce_concat=range(2,6),
        )
    """
    assert parse_genotype(text) == parse_genotype(APPENDIX_LFCC)


def test_non_contiguous_concat_prints_as_python_list_and_round_trips():
    genotype = Genotype(LFCC_NORMAL, (2, 3, 5), LFCC_REDUCE, (2, 3, 4, 5))
    text = genotype.to_string()
    assert f"normal_concat={[2, 3, 5]!r}, " in text
    assert f"reduce_concat={range(2, 6)!r})" in text
    assert parse_genotype(text) == genotype


def test_constructor_normalises_lists_to_tuples():
    as_lists = Genotype([list(e) for e in LFCC_NORMAL], [2, 3, 4, 5], list(LFCC_REDUCE), range(2, 6))
    assert as_lists == KNOWN_GENOTYPES["pcdarts-lfcc"]
    assert hash(as_lists) == hash(KNOWN_GENOTYPES["pcdarts-lfcc"])


def test_primitive_set_is_a_parameter():
    raw = parse_genotype(APPENDIX_RAW, RAW_PRIMITIVES)
    assert raw.normal[0] == ("dil_conv_5", 1) and raw.reduce[-1] == ("avg_pool_3", 1)
    assert raw.to_string() == APPENDIX_RAW
    with pytest.raises(ValueError, match=r"normal\[0\] \(node 0\): unknown op 'dil_conv_5'"):
        parse_genotype(APPENDIX_RAW)


def _edit(old, new, count=1):
    assert old in APPENDIX_LFCC
    return APPENDIX_LFCC.replace(old, new, count)


@pytest.mark.parametrize("text, match", [
    (_edit("0), ('sep_conv_5x5', 1)", "0) ('sep_conv_5x5', 1)"), r"offset 37: expected ',' or '\]', found '\('"),
    (_edit("normal=[", "normal=[;"), r"offset 17: unexpected character ';'"),
    (APPENDIX_LFCC + " extra", r"offset \d+: expected end of text, found 'extra'"),
    (APPENDIX_LFCC[:-1], r"expected ',' or '\)', found end of text"),
    ("genotype" + APPENDIX_LFCC[8:], r"offset 0: expected 'Genotype', found 'genotype'"),
    (_edit("normal_concat", "normal_cat"), r"offset \d+: unknown field 'normal_cat'; fields are normal, normal_concat"),
    (_edit("reduce_concat=range(2, 6)", "reduce_concat=range(2, 6), normal_concat=range(2, 6)"),
     r"field 'normal_concat' given twice"),
    (_edit(", reduce_concat=range(2, 6)", ""), r"missing field\(s\) reduce_concat"),
    (_edit("('sep_conv_3x3', 2)", "(sep_conv_3x3, 2)"), r"expected an op name in quotes, found 'sep_conv_3x3'"),
    (_edit("'max_pool_3x3', 3", "'max_pool_7x7', 3"),
     r"normal\[5\] \(node 2\): unknown op 'max_pool_7x7'; known ops are max_pool_3x3, avg_pool_3x3, skip_connect"),
    (_edit("'max_pool_3x3', 3", "'none', 3"), r"normal\[5\] \(node 2\): 'none' \(the zero op\) cannot be a cell edge"),
    (_edit("('dil_conv_5x5', 0)", "('dil_conv_5x5', 3)"),
     r"normal\[3\] \(node 1\): input index 3 is out of range; node 1 may take inputs 0\.\.2"),
    (_edit("('sep_conv_5x5', 1)", "('sep_conv_5x5', -1)"),
     r"normal\[1\] \(node 0\): input index -1 is out of range; node 0 may take inputs 0\.\.1"),
    (_edit(", ('avg_pool_3x3', 4)]", "]"), r"normal cell has 7 edges; a cell needs exactly 8"),
    (_edit("reduce_concat=range(2, 6)", "reduce_concat=range(1, 6)"), r"reduce_concat \[1, 2, 3, 4, 5\] must be"),
    (_edit("normal_concat=range(2, 6)", "normal_concat=[2, 2, 3]"), r"normal_concat \[2, 2, 3\] must be distinct"),
])
def test_parse_errors_name_the_problem_and_place(text, match):
    with pytest.raises(ValueError, match=match):
        parse_genotype(text)


@pytest.mark.parametrize("payload, match", [
    ('{"normal": [', r"genotype JSON: line 1 column \d+: not valid JSON"),
    ("[1, 2]", r"expected a JSON object"),
    ({"normal": [], "reduce": [], "normal_concat": [2]}, r"missing field\(s\) \['reduce_concat'\]"),
    ({**KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict(), "cells": 1}, r"unknown field\(s\) \['cells'\]"),
    ({**KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict(), "reduce": [["sep_conv_3x3", 0, 1]] * 8},
     r"field 'reduce' must be a list of \[op_name, input_index\] pairs"),
    ({**KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict(), "normal_concat": 2}, r"field 'normal_concat' must be a list"),
    ({**KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict(), "normal": [["sep_conv_3x3", True]] * 8},
     r"genotype JSON: normal\[0\] \(node 0\): input index True is not an integer"),
    ({**KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict(), "reduce_concat": [2, [3]]},
     r"genotype JSON: reduce_concat \[2, \[3\]\] must be distinct node indices in 2\.\.5"),
])
def test_from_json_errors(payload, match):
    with pytest.raises(ValueError, match=match):
        Genotype.from_json(payload)


# ----------------------------------------------------------------------------------- random

def _assert_well_formed(genotype, primitives=PRIMITIVES):
    validate(genotype, primitives)
    for cell in (genotype.normal, genotype.reduce):
        for node in range(4):
            (op_a, source_a), (op_b, source_b) = cell[2 * node:2 * node + 2]
            assert source_a != source_b
            assert "none" not in (op_a, op_b)


def test_random_genotype_valid_deterministic_and_seed_dependent():
    genotypes = [random_genotype(seed) for seed in range(5)]
    for genotype in genotypes:
        _assert_well_formed(genotype)
    assert random_genotype(3) == genotypes[3]
    assert len(set(genotypes)) == 5


def test_random_genotype_is_uniform_over_ops_and_sources():
    draws = [random_genotype(seed) for seed in range(500)]
    ops = [op for g in draws for op, _ in g.normal + g.reduce]
    counts = np.array([ops.count(op) for op in PRIMITIVES[1:]])
    expected = len(ops) / 7
    spread = np.sqrt(len(ops) * (1 / 7) * (6 / 7))
    assert np.all(np.abs(counts - expected) < 5 * spread), counts
    # Node 3 chooses 2 of its 5 inputs, so each input appears in 2/5 of the cells.
    node3_sources = [source for g in draws for cell in (g.normal, g.reduce) for _, source in cell[6:8]]
    cells = 2 * len(draws)
    for source in range(5):
        share = node3_sources.count(source)
        assert abs(share - 0.4 * cells) < 5 * np.sqrt(cells * 0.4 * 0.6), (source, share)


def test_random_genotype_uses_given_primitives():
    genotype = random_genotype(7, RAW_PRIMITIVES)
    _assert_well_formed(genotype, RAW_PRIMITIVES)
    assert {op for op, _ in genotype.normal + genotype.reduce} <= set(RAW_PRIMITIVES[1:])


# ------------------------------------------------------------------------------------ loading

def test_load_known_name():
    assert load_genotype("pcdarts-lfcc") == parse_genotype(APPENDIX_LFCC)


def test_load_string():
    assert load_genotype("  " + APPENDIX_LFCC) == parse_genotype(APPENDIX_LFCC)


def test_load_json_file(tmp_path):
    genotype = random_genotype(11)
    path = tmp_path / "cell.json"
    path.write_text(genotype.to_json())
    assert load_genotype(str(path)) == genotype


def test_load_json_file_with_bad_content_names_the_file(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"normal": [["sep_conv_3x3", 0]\n')
    with pytest.raises(ValueError, match=re.escape(str(broken)) + r": line \d+ column \d+: not valid JSON"):
        load_genotype(str(broken))
    bad_op = tmp_path / "bad_op.json"
    data = KNOWN_GENOTYPES["pcdarts-lfcc"].to_dict()
    data["reduce"][2] = ["conv_9x9", 2]
    bad_op.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=re.escape(str(bad_op)) + r": reduce\[2\] \(node 1\): unknown op 'conv_9x9'"):
        load_genotype(str(bad_op))


def test_load_rejects_unrecognised_spec_listing_forms():
    with pytest.raises(ValueError, match=r"'pcdarts-lfccc' is not recognised; a genotype is a known name "
                                         r"\(pcdarts-lfcc\), a path to a genotype JSON file, or a string"):
        load_genotype("pcdarts-lfccc")
    with pytest.raises(FileNotFoundError, match=r"genotype file runs/missing\.json does not exist"):
        load_genotype("runs/missing.json")


def test_load_known_name_checks_primitive_set():
    with pytest.raises(ValueError, match=r"known genotype 'pcdarts-lfcc': normal\[0\] \(node 0\): unknown op"):
        load_genotype("pcdarts-lfcc", RAW_PRIMITIVES)
