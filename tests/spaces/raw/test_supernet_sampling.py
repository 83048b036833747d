"""The raw supernet under architecture samplers: GDAS' op skipping in the 1-D mixed ops, and a sampled
forward and backward pass of the whole supernet on the parameter tree it was initialised with."""
import jax
import jax.numpy as jnp
import numpy as np

from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces.raw import SPACE, ModelConfig
from darts_jax.spaces.raw.supernet import MixedOpGroup
from tests.spaces.pcdarts2d.test_supernet_sampling import check_skipping_matches_dense, nearly_one_hot

PRIMITIVES = ("none", "max_pool_3", "avg_pool_3", "skip_connect", "std_conv_3", "dil_conv_3", "dil_conv_5")


def test_skipping_unselected_ops_equals_the_dense_masked_mixture():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 16, 8)), jnp.float32)
    # Edge 0 takes dil_conv_5 (DilConv_1), edges 1 and 2 avg_pool_3 (BatchNorm_1): the rest never runs.
    with jax.enable_x64(True):
        check_skipping_matches_dense(lambda skip: MixedOpGroup(PRIMITIVES, 4, 3, 2, skip), x,
                                     nearly_one_hot([6, 2, 2], len(PRIMITIVES)), {"DilConv_1", "BatchNorm_1"})


def test_a_gdas_pass_of_the_supernet_has_finite_gradients_on_its_own_parameter_tree():
    # Two cells (both reduction cells at 2 layers) of four primitives keep the compile short.
    config = ModelConfig(layers=2, init_channels=8, gru_hidden=8, gru_layers=1, embedding_dim=8, num_samples=6124,
                         primitives=("none", "max_pool_3", "skip_connect", "dil_conv_3"))
    variables, arch = SPACE.init_supernet(0, config)
    wave = jnp.asarray(0.1 * np.random.default_rng(0).standard_normal((4, config.num_samples)), jnp.float32)
    net = SPACE.supernet(config)

    def loss(params, arch):
        cos, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, wave, arch, train=True,
                           mutable=["batch_stats"], rngs={"mask": jax.random.key(1), "gumbel": jax.random.key(2)},
                           sampler=SamplerConfig("gdas"), tau=10.0)
        numerator, denominator = SPACE.loss_terms(cos, jnp.array([0, 1, 0, 1]), None)
        return numerator / denominator

    value, (grad_w, grad_a) = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(variables["params"], arch)
    assert np.isfinite(value)
    assert jax.tree.structure(grad_w) == jax.tree.structure(variables["params"])
    assert all(np.isfinite(g).all() for g in jax.tree.leaves((grad_w, grad_a)))
    assert np.abs(np.asarray(grad_a["alphas_reduce"])).sum() > 0
