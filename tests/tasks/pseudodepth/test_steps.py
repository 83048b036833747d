"""The depth GAN's steps touch only their own network; stage 2 copies exactly the mapped leaves."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util

from darts_jax.tasks.arrays import ArrayLoader, fixed_batches
from darts_jax.engine.config import with_fields
from darts_jax.engine.optim import weight_optimizer
from darts_jax.tasks.pseudodepth.models import (
    DepthModelConfig, PatchDiscriminator, SpoofClassifier, UNetGenerator, reuse_mapping)
from darts_jax.tasks.pseudodepth.pretrain import PretrainConfig, init_pretrain_state
from darts_jax.tasks.pseudodepth.steps import adversarial_loss, classifier_step, d_step, g_step
from darts_jax.tasks.pseudodepth.train import (
    DepthTrainConfig, copy_generator_weights, init_classifier, init_train_state)

MODEL = DepthModelConfig(size=16, width=4, levels=2, disc_width=4)


def _equal(a, b):
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _compiled(step, **settings):
    """`step` with its keyword-only settings fixed, compiled (op by op, the D and G steps took 17 s; compiled, 3 s)."""
    return jax.jit(lambda *args: step(*args, **settings))


@pytest.fixture(scope="module")
def state_and_batch():
    rng = np.random.default_rng(0)
    batch = {"image": rng.random((4, 16, 16), np.float32),
             "depth": np.where(np.arange(4)[:, None, None] % 2, rng.random((4, 16, 16)), 0).astype(np.float32)}
    return init_pretrain_state(with_fields(PretrainConfig(model=MODEL), seed=1)), batch


def test_d_step_leaves_the_generator_and_g_step_the_discriminator(state_and_batch):
    state, batch = state_and_batch
    after_d, metrics = _compiled(d_step, model=MODEL, gan_loss="bce", b1=0.5, b2=0.999)(state, batch, 2e-4)
    assert _equal(after_d.params, state.params) and _equal(after_d.batch_stats, state.batch_stats)
    assert _equal(after_d.opt_g, state.opt_g)
    assert not _equal(after_d.d_params, state.d_params) and not _equal(after_d.d_stats, state.d_stats)
    assert 0.0 <= float(metrics["d_accuracy"]) <= 1.0
    after_g, _ = _compiled(g_step, model=MODEL, gan_loss="bce", lambda_rec=100.0, b1=0.5, b2=0.999)(state, batch, 2e-4)
    assert _equal(after_g.d_params, state.d_params) and _equal(after_g.d_stats, state.d_stats)
    assert _equal(after_g.opt_d, state.opt_d)
    assert not _equal(after_g.params, state.params) and not _equal(after_g.batch_stats, state.batch_stats)


def test_d_step_gradient_does_not_reach_g_through_the_fake(state_and_batch):
    # The D loss as a function of G's params, with stop_gradient on G(x) as the step has it, is flat.
    state, batch = state_and_batch
    def d_loss_of_g(g_params):
        fake = jax.lax.stop_gradient(UNetGenerator(MODEL).apply(
            {"params": g_params, "batch_stats": state.batch_stats}, batch["image"][..., None], train=False))
        logits = PatchDiscriminator(MODEL).apply({"params": state.d_params, "batch_stats": state.d_stats},
                                                 batch["image"][..., None], fake, train=False)
        return adversarial_loss(logits, 0.0, "bce")

    grads = jax.grad(d_loss_of_g)(state.params)
    assert all(not np.any(g) for g in jax.tree.leaves(grads))


def test_adversarial_losses_match_numpy():
    logits = jnp.array([[-2.0, 0.5], [1.0, 3.0]])
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    assert float(adversarial_loss(logits, 1.0, "bce")) == pytest.approx(-np.log(p).mean(), rel=1e-5)
    assert float(adversarial_loss(logits, 0.0, "bce")) == pytest.approx(-np.log(1 - p).mean(), rel=1e-5)
    assert float(adversarial_loss(logits, 1.0, "lsgan")) == pytest.approx(((p - 1) ** 2).mean(), rel=1e-5)


@pytest.mark.parametrize("reuse", ["encoder", "encoder_decoder"])
def test_parameter_copy_takes_exactly_the_mapped_leaves(state_and_batch, reuse):
    state, _ = state_and_batch
    config = DepthTrainConfig(model=MODEL, method="reuse", reuse=reuse, pretrained="unused")
    fresh = init_classifier(config)
    copied = copy_generator_weights(fresh, {"params": state.params, "batch_stats": state.batch_stats},
                                    reuse_mapping(reuse), "test")
    for collection, generator in (("params", state.params), ("batch_stats", state.batch_stats)):
        flat_g = traverse_util.flatten_dict(generator)
        flat_c = traverse_util.flatten_dict(copied[collection])
        flat_fresh = traverse_util.flatten_dict(fresh[collection])
        reused = {k for k in flat_c if k[0] in reuse_mapping(reuse).values()}
        assert reused and all(np.array_equal(flat_c[k], flat_g[k]) for k in reused)
        if collection == "params":
            assert not any(np.array_equal(flat_fresh[k], flat_g[k]) for k in reused if flat_g[k].std() > 0)
        assert all(np.array_equal(flat_c[k], flat_fresh[k]) for k in set(flat_c) - reused)  # the head stays
    assert "decoder" in copied["params"] if reuse == "encoder_decoder" else "decoder" not in copied["params"]
    wider = DepthTrainConfig(model=with_fields(MODEL, width=6), method="reuse", pretrained="unused")
    with pytest.raises(Exception, match="do not fit"):
        copy_generator_weights(init_classifier(wider), {"params": state.params, "batch_stats": state.batch_stats},
                               reuse_mapping("encoder"), "the stage-1 run")


def test_loader_resumes_where_it_stopped_and_batches_cover_every_row():
    arrays = {"x": np.arange(10)}
    loader = ArrayLoader(arrays, 3, seed=4)
    drawn = [next(it) for it in [iter(loader)] for _ in range(7)]
    epoch_rows = np.concatenate([b["x"] for b in drawn[:3]])
    assert len(set(epoch_rows)) == 9  # one epoch: 3 batches of distinct rows, the tenth dropped
    again = ArrayLoader(arrays, 3, seed=4)
    again.restore({"cursor": 5, "seed": 4})
    np.testing.assert_array_equal(next(iter(again))["x"], drawn[5]["x"])
    padded = list(fixed_batches(arrays, 4))
    assert [count for _, count in padded] == [4, 4, 2]
    np.testing.assert_array_equal(padded[-1][0]["x"], [8, 9, 0, 0])
    with pytest.raises(ValueError, match="seed"):
        again.restore({"cursor": 1, "seed": 5})


def test_config_refuses_inconsistent_methods():
    with pytest.raises(ValueError, match="pretrained"):
        DepthTrainConfig(method="reuse")
    with pytest.raises(ValueError, match="pretrained"):
        DepthTrainConfig(method="scratch", pretrained="runs/x")
    with pytest.raises(ValueError, match="fuse_depth"):
        DepthTrainConfig(method="scratch", fuse_depth=True)
    with pytest.raises(ValueError, match="gan_loss"):
        PretrainConfig(gan_loss="wgan")


def test_frozen_backbone_moves_only_the_head(state_and_batch):
    generator_state, batch = state_and_batch
    config = DepthTrainConfig(model=MODEL, method="scratch")
    state = init_train_state(config)
    batch = {**batch, "label": np.array([0, 1, 0, 1], np.int32)}
    step = _compiled(classifier_step, model=MODEL, decoder=False, lambda_depth=0.0, tx=weight_optimizer(config.optim),
                     backbone=("encoder",))
    frozen, _ = step(state, batch, 1e-2, 0.0)
    assert _equal(frozen.params["encoder"], state.params["encoder"])
    assert not _equal(frozen.params["head"], state.params["head"])
    trained, metrics = step(state, batch, 1e-2, 1.0)
    assert not _equal(trained.params["encoder"], state.params["encoder"])
    # The CE is the mean binary cross-entropy of the live logits, computed here with NumPy.
    logits, _ = SpoofClassifier(MODEL).apply({"params": state.params, "batch_stats": state.batch_stats},
                                             batch["image"][..., None], train=True, mutable=["batch_stats"])[0]
    p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
    y = batch["label"]
    assert float(metrics["ce"]) == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), rel=1e-4)
