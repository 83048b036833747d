"""Search steps: one device against two, one trace per step function, the unrolled α-gradient; a GDAS
search resumed bit for bit along its temperature schedule, and the sampler's command-line settings.

Compiling is what these tests cost, so the network is one reduction cell with four primitives (a pool,
the strided skip, a separable conv; 'none' is free) and each step function is compiled once per module.
"""
import contextlib
import dataclasses
import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from darts_jax import cli
from darts_jax.data.loader import Batch
from darts_jax.engine import parallel
from darts_jax.engine.config import with_fields
from darts_jax.engine.losses import weighted_cross_entropy
from darts_jax.nn import frontends
from darts_jax.relaxations import SamplerConfig
from darts_jax.spaces.pcdarts2d import SPACE
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.supernet import SearchNetwork
from darts_jax.tasks import search as steps
from darts_jax.tasks.evaluate import batch_arrays
from darts_jax.tasks.search import SearchConfig, init_search_state
from tests.step_traces import compile_search_steps_once, count_traces
from tests.tasks.test_loops import InMemoryLoader

TINY = ModelConfig(layers=1, init_channels=4, num_samples=2048,
                   primitives=("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"))
STEP_LRS = (1e-2, 8e-3, 6e-3)  # a new rate each step, as at epoch boundaries: must not retrace
# Device 0 sees only bona fide and device 1 only spoof utterances, so a per-device loss normalisation
# (instead of the global Σ w·nll / Σ w) would show.
LABELS = np.array([1, 1, 0, 0], np.int32)


def _float64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64) if np.issubdtype(np.asarray(x).dtype, np.floating)
                        else np.asarray(x), tree)


@contextlib.contextmanager
def _float64_mode():
    """x64 for the duration, with the front end's features cast up so the whole network runs in float64.

    The front end computes in float32 by design, and XLA's float32 result differs by an ulp between
    batch shapes; computed one utterance at a time, the features are bitwise the same whatever the
    per-device batch, so they have no bearing on what these tests compare.
    """
    extract = frontends.extract_features

    def per_utterance(name, wave_BxS):
        return jax.lax.map(lambda wave_S: extract(name, wave_S[None])[0], wave_BxS).astype(wave_BxS.dtype)

    with pytest.MonkeyPatch.context() as patch, jax.enable_x64(True):
        patch.setattr(frontends, "extract_features", per_utterance)
        yield


def _batch(rng, labels, dtype):
    size = len(labels)
    wave = (0.1 * rng.standard_normal((size, TINY.num_samples))).astype(dtype)
    return Batch(wave, labels, np.ones(size, bool), ("",) * size, ("",) * size)


@pytest.fixture(scope="module")
def host_state():
    return init_search_state(SPACE, SearchConfig(model=TINY))


@pytest.fixture(scope="module")
def float64_runs(host_state):
    """Three search steps (α/β step, then weight step) on 1 and on 2 devices, in float64.

    float64 because in float32 the two runs differ by 1e-7 to 2e-4 in some weights after one step
    (depending on the network): weights that feed an affine-free BatchNorm get near-cancelling
    gradients, rounding noise near Adam's eps that depends on the summation order, and Adam's first
    step turns any gradient into ≈ lr·sign(g). Their gradients agree; in float64 the noise is far below
    eps, so what remains to compare is the data-parallel semantics: synchronised BatchNorm, the global
    loss normalisation, summed gradients, and the same masking key on every device.
    """
    config = with_fields(SearchConfig(model=dataclasses.replace(TINY, mask=True)), batch_size=len(LABELS))
    rng = np.random.default_rng(0)
    batches = [(_batch(rng, LABELS, np.float64), _batch(rng, LABELS[::-1].copy(), np.float64)) for _ in STEP_LRS]
    runs = {}
    with _float64_mode():
        for count in (1, 2):
            with pytest.MonkeyPatch.context() as patch:
                traces = count_traces(patch, ("arch_step", "weight_step"))
                compiled = steps.compile_search_steps(SPACE, config, parallel.local_devices(count))
            state = parallel.replicate(_float64(host_state), compiled.devices)
            history = []
            for (weight_batch, arch_batch), lr in zip(batches, STEP_LRS):
                weight_batch = parallel.shard_batch(batch_arrays(weight_batch), count)
                state, arch_metrics = compiled.arch_step(state, parallel.shard_batch(batch_arrays(arch_batch), count),
                                                         weight_batch, lr, 0.0, 1.0, 0.0)
                state, weight_metrics = compiled.weight_step(state, weight_batch, lr, 1.0, 0.0)
                metrics = {**{f"arch_{k}": v for k, v in arch_metrics.items()}, **weight_metrics}
                history.append((jax.device_get(state), jax.device_get(metrics)))
            runs[count] = {"history": history, "traces": traces}
    return runs


def test_search_steps_agree_on_one_and_two_devices(float64_runs):
    # Measured agreement is ~1e-15; the margin covers Adam's amplification of rounding (lr·δg / eps).
    for step, ((one, one_metrics), (two, two_metrics)) in enumerate(
            zip(float64_runs[1]["history"], float64_runs[2]["history"])):
        assert jax.tree.leaves(one.params)[0].dtype == np.float64
        for part in ("params", "batch_stats", "arch", "opt_w", "opt_a"):
            jax.tree.map(functools.partial(np.testing.assert_allclose, rtol=0, atol=1e-9,
                                           err_msg=f"step {step}: {part}"),
                         jax.tree.map(lambda x: x[0], getattr(one, part)),
                         jax.tree.map(lambda x: x[0], getattr(two, part)))
        for name in ("loss", "grad_norm", "accuracy", "arch_loss", "arch_grad_norm", "arch_accuracy"):
            np.testing.assert_allclose(two_metrics[name], one_metrics[name][0], rtol=1e-10,
                                       err_msg=f"step {step}: {name}")


def test_two_device_replicas_stay_identical(float64_runs):
    final, _ = float64_runs[2]["history"][-1]
    jax.tree.map(lambda x: np.testing.assert_array_equal(x[0], x[1]), final)


def test_each_step_function_is_traced_once(float64_runs):
    # The state fed back is pmap's own output, the first one comes from parallel.replicate, and the
    # learning rate changes every step: none of it may trigger a second trace.
    for count in (1, 2):
        assert float64_runs[count]["traces"] == {"arch_step": 1, "weight_step": 1}, f"{count} device(s)"


def _unrolled_validation_loss(config: SearchConfig, state, weight_batch, arch_batch):
    """L_val(w - lr·(∇w L_train(w, α) + wd·w), α) as a function of (α, lr), from its definition."""
    net = SearchNetwork(config.model)

    def loss(params, arch, batch):
        logits, _ = net.apply({"params": params, "batch_stats": state.batch_stats}, batch["inputs"], arch,
                              train=True, mutable=["batch_stats"])
        return weighted_cross_entropy(logits, batch["label"], config.optim.class_weights)

    def unrolled(arch, lr):
        grads = jax.grad(loss)(state.params, arch, weight_batch)
        virtual = jax.tree.map(lambda w, g: w - lr * (g + config.optim.weight_decay * w), state.params, grads)
        return loss(virtual, arch, arch_batch)

    return jax.jit(unrolled)


def test_unrolled_arch_gradient_matches_finite_differences(host_state):
    # No weight decay on α, so the first Adam moment after one step is exactly (1 - b1)·∇α.
    config = SearchConfig(model=TINY, unrolled=True, arch_weight_decay=0.0)
    lr, h = 0.1, 1e-5
    entries = [("alphas_reduce", (0, 3)), ("alphas_reduce", (4, 1)), ("alphas_reduce", (13, 2)),
               ("betas_reduce", (3,)), ("betas_reduce", (11,))]
    rng = np.random.default_rng(1)
    weight_batch, arch_batch = ({"inputs": b.wave_BxS, "label": b.label_B}
                                for b in (_batch(rng, np.array([0, 1], np.int32), np.float64) for _ in range(2)))
    with _float64_mode():
        state = jax.tree.map(jnp.asarray, _float64(host_state))
        arch_step = jax.jit(functools.partial(steps.arch_step, space=SPACE, config=config))
        new_state, _ = arch_step(state, arch_batch, weight_batch, lr)
        autodiff = jax.device_get(optax.tree_utils.tree_get(new_state.opt_a, "mu"))
        autodiff = jax.tree.map(lambda mu: mu / (1 - config.arch_betas[0]), autodiff)
        loss = _unrolled_validation_loss(config, state, weight_batch, arch_batch)

        def central_difference(name, index, step_lr):
            def shifted(delta):
                arch = dict(state.arch)
                arch[name] = arch[name].at[index].add(delta)
                return float(loss(arch, step_lr))
            return (shifted(h) - shifted(-h)) / (2 * h)

        unrolled = np.array([central_difference(name, index, lr) for name, index in entries])
        first_order = np.array([central_difference(name, index, 0.0) for name, index in entries])
    exact = np.array([autodiff[name][index] for name, index in entries])
    # Central differences in float64 at h = 1e-5 are good to ~1e-8 relative here (measured: ~1e-9).
    np.testing.assert_allclose(exact, unrolled, rtol=1e-6, atol=1e-10)
    # The virtual step must matter at this learning rate, or the check above could not tell the orders apart.
    assert np.max(np.abs(unrolled - first_order)) > 100 * (1e-6 * np.max(np.abs(unrolled)) + 1e-10)


# ------------------------------------------------------------------------------ sampled (Gumbel) search

def _read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _gdas_search(workdir, epochs):
    config = with_fields(SearchConfig(model=TINY), batch_size=len(LABELS), epochs=epochs, warmup_epochs=0,
                         steps_per_epoch=2, log_every=1, checkpoint_every=100, hessian_every=0, sampler="gdas",
                         tau_end=1.0)
    loaders = [InMemoryLoader([_batch(np.random.default_rng(seed + i), LABELS, np.float32) for i in range(2)], 2)
               for seed in (0, 10)]
    return steps.search(SPACE, config, *loaders, workdir, quiet=True)


def test_a_resumed_gdas_search_is_bit_identical_and_continues_the_schedule(tmp_path, monkeypatch):
    compile_search_steps_once(monkeypatch)  # the three runs differ only in length
    straight = _gdas_search(tmp_path / "straight", 3)
    _gdas_search(tmp_path / "resumed", 1)
    resumed = _gdas_search(tmp_path / "resumed", 3)  # a longer run from the first one's checkpoint
    jax.tree.map(np.testing.assert_array_equal, straight.state, resumed.state)
    records = {name: _read_jsonl(tmp_path / name / "metrics.jsonl") for name in ("straight", "resumed")}
    keys = ("step", "loss", "arch_loss", "tau")
    assert [[r[k] for k in keys] for r in records["straight"]] == [[r[k] for k in keys] for r in records["resumed"]]
    # τ falls linearly from 10 to tau_end = 1 over the 3 epochs (GDAS' rule), read from the state's step.
    np.testing.assert_allclose([r["tau"] for r in records["straight"]], np.repeat([10.0, 5.5, 1.0], 2))
    assert not np.array_equal(straight.state.arch["alphas_reduce"], init_search_state(
        SPACE, SearchConfig(model=TINY)).arch["alphas_reduce"])


def test_the_search_command_line_sets_the_sampler_and_refuses_what_it_cannot_run(tmp_path):
    def config(*flags):
        args = cli.build_parser().parse_args(["search", "--data", "LA", "--workdir", str(tmp_path / "run"), *flags])
        return cli._run_config(SearchConfig, args)

    assert config().relaxation.resolved == ("softmax", 1, "constant", 1.0, 1.0) and not config().sampled
    gdas = config("--sampler", "gdas", "--tau-end", "0.5")
    assert gdas.relaxation.resolved == ("gumbel_st", 1, "linear", 10.0, 0.5) and gdas.sampled
    assert config("--sampler", "gumbel_rao").relaxation.resolved == ("gumbel_rao", 15, "constant", 10.0, 10.0)
    assert config("--sampler", "gumbel_st_mc", "--sampler-samples", "5", "--per-example-sample").relaxation == \
        SamplerConfig("gumbel_st_mc", sampler_samples=5, per_example_sample=True)
    with pytest.raises(ValueError, match=r"sampler_samples \(--sampler-samples\)"):
        config("--sampler", "gdas", "--sampler-samples", "3")
    remedied = config("--sampler", "fair_darts", "--zero-one", "10", "--aux-skip", "1", "--early-stop-ratio", "0.75",
                      "--early-stop-window", "4", "--beta-decay", "2", "--max-skips", "2")
    assert remedied.relaxation.mode == "sigmoid" and remedied.sampled
    assert (remedied.zero_one, remedied.aux_skip, remedied.early_stop_ratio, remedied.early_stop_window,
            remedied.beta_decay, remedied.model.max_skips) == (10.0, 1.0, 0.75, 4, 2.0, 2)
    # A space whose supernet draws nothing is refused by name before anything compiles.
    softmax_only = dataclasses.replace(SPACE, name="softmax-only", supernet=lambda model: _SoftmaxOnlySupernet())
    with pytest.raises(ValueError, match="space 'softmax-only' only has the softmax relaxation"):
        steps.check_sampler_support(softmax_only, gdas)
    steps.check_sampler_support(softmax_only, config())


class _SoftmaxOnlySupernet:
    def __call__(self, inputs, arch, train):
        raise AssertionError("never built")
