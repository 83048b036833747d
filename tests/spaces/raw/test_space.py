"""The raw space as a whole: the spec's parameter counts and lengths, genotypes, config checks, the
supernet's gradients (weights, α/β, learnable band edges), and training refusing a learnable sinc."""
import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from darts_jax import cli
from darts_jax.engine.state import count_params
from darts_jax.spaces import get_space
from darts_jax.spaces.pcdarts2d.genotype_text import parse_genotype
from darts_jax.spaces.raw import SPACE, ModelConfig
from darts_jax.spaces.raw.genotype import KNOWN_GENOTYPES, load_genotype
from darts_jax.spaces.raw.network import DerivedCell, DerivedNetwork
from darts_jax.spaces.raw.skeleton import Stem

APPENDIX_RAW = (  # spec Appendix, as the authors' code prints it
    "Genotype(normal=[('dil_conv_5', 1), ('dil_conv_3', 0), ('dil_conv_5', 1), ('dil_conv_5', 2), "
    "('std_conv_5', 2), ('skip_connect', 3), ('std_conv_5', 2), ('skip_connect', 4)], normal_concat=range(2, 6), "
    "reduce=[('max_pool_3', 0), ('std_conv_3', 1), ('dil_conv_3', 0), ('dil_conv_3', 2), ('skip_connect', 0), "
    "('dil_conv_5', 2), ('dil_conv_3', 0), ('avg_pool_3', 1)], reduce_concat=range(2, 6))")
MEL = KNOWN_GENOTYPES["raw-pcdarts-mel"]
# Small enough to compile in seconds: 3 cells (a normal one, then reductions at 1 and 2).
TINY = ModelConfig(layers=3, init_channels=8, gru_hidden=8, gru_layers=2, embedding_dim=8, num_samples=6124)


def _last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_params_of_the_published_genotype_and_the_supernet(capsys):
    """Spec §1.3 / §4: 24,478,208 and 30,420,224 at 8 cells / 64 channels (PyTorch GRU biases)."""
    assert cli.main(["params", "--space", "raw", "--genotype", "raw-pcdarts-mel", "--layers", "8",
                     "--init-channels", "64"]) == 0
    assert _last_line(capsys) == "24478208"
    assert cli.main(["params", "--supernet", "--space", "raw", "--layers", "8", "--init-channels", "64"]) == 0
    assert _last_line(capsys) == "30420224"
    # A learnable sinc adds 2 x 68 band values, in search only.
    assert cli.main(["params", "--supernet", "--space", "raw", "--learnable-sinc"]) == 0
    assert _last_line(capsys) == str(30420224 + 136)


def test_the_lengths_of_spec_section_4():
    config = ModelConfig()
    net = DerivedNetwork(config, MEL)
    wave = jax.ShapeDtypeStruct((1, 64000), jnp.float32)

    def lengths(wave):
        variables = net.init(jax.random.key(0), wave, False)
        _, state = net.apply(variables, wave, False, capture_intermediates=lambda m, _: isinstance(
            m, (Stem, DerivedCell, nn.Conv)) or type(m).__name__ == "FrontEnd", mutable=["intermediates"])
        return state["intermediates"]

    found = jax.eval_shape(lengths, wave)
    assert found["stem"]["frontend"]["__call__"][0].shape == (1, 63876, 64)
    s0, s1 = found["stem"]["__call__"][0]
    assert (s0.shape, s1.shape) == ((1, 21292, 64), (1, 10646, 64))
    cell_shapes = [found[f"DerivedCell_{i}"]["__call__"][0].shape for i in range(8)]
    assert [s[1] for s in cell_shapes] == [5323, 2661, 1330, 665, 332, 166, 83, 41]
    assert cell_shapes[-1][2] == 4 * 256


def test_the_published_genotype_parses_from_the_pytorch_string():
    assert load_genotype(APPENDIX_RAW) == MEL == load_genotype("raw-pcdarts-mel")
    assert parse_genotype(MEL.to_string(), SPACE.primitives) == MEL
    assert SPACE.genotype_from_dict(SPACE.genotype_to_dict(MEL), ModelConfig(), "test") == MEL
    with pytest.raises(ValueError, match=r"'pcdarts-lfcc' is not recognised; a genotype is a known name "
                                         r"\(raw-pcdarts-mel\)"):
        SPACE.load_genotype("pcdarts-lfcc", ModelConfig())  # a 2-D name is no raw genotype
    assert get_space("raw") is SPACE


@pytest.mark.parametrize("change, message", [
    (dict(frontend="lfcc"), r"frontend: 'lfcc' is not one of sinc, conv"),
    (dict(sinc_scale="bark"), r"sinc_scale: 'bark' is not one of mel, linear, lem"),
    (dict(num_samples=8000), r"num_samples: 8000 gives 2625 steps"),
    (dict(sinc_low_hz=(1.0,) * 12), r"sinc_low_hz, sinc_band_hz: give both"),
    (dict(sinc_low_hz=(1.0,) * 3, sinc_band_hz=(1.0,) * 3), r"sinc_low_hz: 3 values, expected 12"),
])
def test_bad_configs_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(TINY, **change)


def test_a_learnable_sinc_is_refused_in_training(capsys):
    learnable = dataclasses.replace(TINY, learnable_sinc=True)
    with pytest.raises(ValueError, match=r"learnable_sinc: a trained network's sinc is frozen"):
        SPACE.init_network(0, learnable, MEL)
    assert cli.main(["params", "--space", "raw", "--genotype", "raw-pcdarts-mel", "--learnable-sinc"]) == 2
    assert "learnable_sinc" in capsys.readouterr().err


def test_initial_p2sgrad_columns_are_unit_vectors():
    variables = SPACE.init_network(0, TINY, MEL)
    w = np.asarray(variables["params"]["head"]["p2sgrad"]["weight"])
    np.testing.assert_allclose(np.linalg.norm(w, axis=0), 1.0, rtol=1e-5)
    assert count_params(variables["params"]) == count_params(jax.eval_shape(
        lambda: DerivedNetwork(TINY, MEL).init(jax.random.key(0), jnp.zeros((1, 6124)), False))["params"])


def test_the_supernet_is_differentiable_in_weights_arch_and_learnable_band_edges():
    config = dataclasses.replace(TINY, learnable_sinc=True)
    variables, arch = SPACE.init_supernet(0, config)
    wave = jnp.asarray(0.1 * np.random.default_rng(0).standard_normal((4, config.num_samples)), jnp.float32)
    labels = jnp.array([0, 1, 0, 1])
    net = SPACE.supernet(config)

    def loss(params, arch):
        cos, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, wave, arch, train=True,
                           mutable=["batch_stats"], rngs={"mask": jax.random.key(1)})
        numerator, denominator = SPACE.loss_terms(cos, labels, None)
        return numerator / denominator

    value, (grad_w, grad_a) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables["params"], arch)
    assert np.isfinite(value)
    sinc = grad_w["stem"]["frontend"]["sinc"]
    cell_ops = grad_w["SearchCell_0"]
    head = grad_w["head"]
    for name, grad in [("low_hz_", sinc["low_hz_"]), ("band_hz_", sinc["band_hz_"]),
                       ("gru", head["gru"]["weight_hh_l0"]), ("cell conv", cell_ops["MixedOpGroup_0"]),
                       *((k, grad_a[k]) for k in arch)]:
        leaves = jax.tree.leaves(grad)
        assert all(np.all(np.isfinite(g)) for g in leaves), name
        assert any(np.abs(g).max() > 0 for g in leaves), name
    # Against a central finite difference in one α entry.
    direction = jax.tree.map(jnp.zeros_like, arch)
    direction["alphas_normal"] = direction["alphas_normal"].at[3, 4].set(1.0)
    eps = 1e-2
    shifted = [jax.tree.map(lambda a, d: a + s * eps * d, arch, direction) for s in (1, -1)]
    numeric = (loss(variables["params"], shifted[0]) - loss(variables["params"], shifted[1])) / (2 * eps)
    np.testing.assert_allclose(grad_a["alphas_normal"][3, 4], numeric, rtol=0.05, atol=1e-6)
