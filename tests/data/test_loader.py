"""BatchLoader: batches, (seed, epoch) order, exact mid-epoch resume, host shards, padding, threads."""
import gc
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from darts_jax.data.audio import fix_length, load_audio
from darts_jax.data.loader import BatchLoader, measure_throughput, search_loaders
from darts_jax.data.protocols import Utterance, load_partition

NUM_SAMPLES = 800


@pytest.fixture(scope="module")
def utterances(tmp_path_factory):
    """37 short FLAC files, some shorter than NUM_SAMPLES so that padding is exercised."""
    folder = tmp_path_factory.mktemp("loader_audio")
    rng = np.random.default_rng(0)
    records = []
    for index in range(37):
        samples = (rng.standard_normal(int(rng.integers(400, 1500))) * 2000).astype(np.int16)
        path = folder / f"U{index:02d}.flac"
        sf.write(path, samples, 16000, subtype="PCM_16")
        attack = "-" if index % 4 == 0 else f"A0{index % 4}"
        records.append(Utterance(f"U{index:02d}", f"S{index % 3}", attack, int(attack == "-"), path))
    return records


def make_loader(utterances, **options):
    defaults = dict(batch_size=5, seed=3, num_samples=NUM_SAMPLES, num_workers=3, prefetch=3)
    defaults.update(options)
    return BatchLoader(utterances, **defaults)


def take(iterator, count):
    return [next(iterator) for _ in range(count)]


def loader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("darts-jax-loader")]


def test_batches_hold_the_repeat_padded_first_samples(utterances):
    loader = make_loader(utterances)
    batch = next(iter(loader))
    assert batch.wave_BxS.shape == (5, NUM_SAMPLES) and batch.wave_BxS.dtype == np.float32
    assert batch.label_B.dtype == np.int32 and batch.valid_B.all()
    by_id = {u.utt_id: u for u in utterances}
    for row, utt_id in enumerate(batch.utt_ids):
        utt = by_id[utt_id]
        np.testing.assert_array_equal(batch.wave_BxS[row], fix_length(load_audio(utt.path), NUM_SAMPLES))
        assert batch.label_B[row] == utt.label and batch.attacks[row] == utt.attack


def test_order_comes_from_seed_and_epoch(utterances):
    loader = make_loader(utterances)
    assert loader.steps_per_epoch == 37 // 5
    epochs = [[i for b in take(iter(make_loader(utterances)), 14)[7 * e:7 * (e + 1)] for i in b.utt_ids]
              for e in range(2)]
    for order in epochs:
        assert len(set(order)) == 35  # drop_last: 35 of 37, none twice
    assert epochs[0] != epochs[1]
    again = [i for b in take(iter(make_loader(utterances)), 7) for i in b.utt_ids]
    assert again == epochs[0]
    other_seed = [i for b in take(iter(make_loader(utterances, seed=4)), 7) for i in b.utt_ids]
    assert other_seed != epochs[0]
    unshuffled = [i for b in take(iter(make_loader(utterances, shuffle=False)), 7) for i in b.utt_ids]
    assert unshuffled == [u.utt_id for u in utterances[:35]]


@pytest.mark.parametrize("consumed", [3, 7, 10])
def test_exact_resume_mid_epoch_despite_prefetch(utterances, consumed):
    reference = take(iter(make_loader(utterances, random_crop=True)), consumed + 6)
    first = make_loader(utterances, random_crop=True)
    stream = iter(first)
    take(stream, consumed)
    saved = json.loads(json.dumps(first.state()))
    assert (saved["epoch"], saved["batch_index"]) == divmod(consumed, first.steps_per_epoch)
    stream.close()
    resumed = make_loader(utterances, random_crop=True)
    resumed.restore(saved)
    for expected, got in zip(reference[consumed:], take(iter(resumed), 6)):
        assert got.utt_ids == expected.utt_ids
        np.testing.assert_array_equal(got.wave_BxS, expected.wave_BxS)


def test_random_crops_change_with_the_epoch_but_not_with_threads(utterances):
    long_only = [u for u in utterances if sf.info(u.path).frames > 1000]
    loader = make_loader(long_only, batch_size=len(long_only), shuffle=False, random_crop=True, num_workers=1)
    epoch0, epoch1 = take(iter(loader), 2)
    assert not np.array_equal(epoch0.wave_BxS, epoch1.wave_BxS)
    threaded = make_loader(long_only, batch_size=len(long_only), shuffle=False, random_crop=True, num_workers=4)
    np.testing.assert_array_equal(next(iter(threaded)).wave_BxS, epoch0.wave_BxS)


def test_restore_rejects_another_loader(utterances):
    state = make_loader(utterances).state()
    with pytest.raises(ValueError, match="batch_size: saved 5, this loader has 6"):
        make_loader(utterances, batch_size=6).restore(state)
    with pytest.raises(ValueError, match="out of range"):
        make_loader(utterances).restore({**state, "batch_index": 99})


def test_a_new_iterator_supersedes_the_old_one(utterances):
    loader = make_loader(utterances)
    old = iter(loader)
    next(old)
    new = iter(loader)
    assert next(new).utt_ids != ()
    with pytest.raises(RuntimeError, match="superseded"):
        next(old)


def test_training_shards_are_disjoint_and_cover_the_data(utterances):
    shards = [make_loader(utterances, shard_index=i, shard_count=3, batch_size=4) for i in range(3)]
    assert {s.steps_per_epoch for s in shards} == {37 // 3 // 4}
    for epoch in range(2):
        orders = [set(s.epoch_order(epoch).tolist()) for s in shards]
        assert all(len(o) == 37 // 3 for o in orders)
        assert not (orders[0] & orders[1] or orders[0] & orders[2] or orders[1] & orders[2])
        assert len(set.union(*orders)) == 37 - 37 % 3
    batches = [next(iter(s)) for s in shards]
    assert not set(batches[0].utt_ids) & set(batches[1].utt_ids)


def test_the_global_batch_does_not_depend_on_the_number_of_shards(utterances):
    # Two hosts with batches of 3 see, side by side, exactly one host's batch of 6, in device order.
    whole = make_loader(utterances, batch_size=6)
    halves = [make_loader(utterances, shard_index=i, shard_count=2, batch_size=3) for i in range(2)]
    assert whole.steps_per_epoch == halves[0].steps_per_epoch == 37 // 6
    for epoch in range(2):
        joined = np.stack([h.epoch_order(epoch).reshape(-1, 3) for h in halves], axis=1).reshape(-1)
        np.testing.assert_array_equal(joined, whole.epoch_order(epoch))
    batch, parts = next(iter(whole)), [next(iter(h)) for h in halves]
    assert batch.utt_ids == parts[0].utt_ids + parts[1].utt_ids
    np.testing.assert_array_equal(batch.wave_BxS, np.concatenate([p.wave_BxS for p in parts]))


def test_one_pass_scores_every_utterance_once_with_padding(utterances):
    shards = [make_loader(utterances, shard_index=i, shard_count=2, batch_size=4) for i in range(2)]
    passes = [list(s.one_pass()) for s in shards]
    assert [len(p) for p in passes] == [shards[0].eval_steps] * 2 == [5, 5]
    seen = []
    for batches in passes:
        ids = [i for b in batches for i, ok in zip(b.utt_ids, b.valid_B) if ok]
        assert ids == sorted(ids)  # protocol order
        seen += ids
        last = batches[-1]
        assert not last.valid_B.all()
        assert not last.wave_BxS[~last.valid_B].any() and set(np.array(last.utt_ids)[~last.valid_B]) == {""}
    assert sorted(seen) == [u.utt_id for u in utterances]


def test_abandoned_and_failed_iterators_leave_no_threads(utterances, tmp_path):
    stream = iter(make_loader(utterances))
    next(stream)
    assert loader_threads()
    del stream
    gc.collect()
    assert not loader_threads()
    missing = utterances[:7] + [Utterance("gone", "S", "-", 1, tmp_path / "gone.flac")]
    failing = iter(make_loader(missing, shuffle=False, batch_size=4))
    next(failing)
    with pytest.raises(FileNotFoundError, match="gone.flac: audio file not found"):
        next(failing)
    assert not loader_threads()


def test_interpreter_exits_with_an_unfinished_iterator(utterances):
    paths = [str(u.path) for u in utterances]
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from darts_jax.data.loader import BatchLoader\n"
        "from darts_jax.data.protocols import Utterance\n"
        f"utts = [Utterance(str(i), 's', '-', 1, Path(p)) for i, p in enumerate({paths!r})]\n"
        "stream = iter(BatchLoader(utts, 2, num_samples=800, prefetch=8))\n"
        "next(stream)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parents[1])
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_search_loaders_are_independent_halves(tiny_corpus):  # noqa: F811
    weights, arch = search_loaders(tiny_corpus, 4, seed=123, num_samples=NUM_SAMPLES)
    trn_h = {u.utt_id for u in load_partition(tiny_corpus, "trn_h")}
    trn_t = {u.utt_id for u in load_partition(tiny_corpus, "trn_t")}
    assert set(next(iter(weights)).utt_ids) <= trn_h and set(next(iter(arch)).utt_ids) <= trn_t
    assert weights.state()["seed"] != arch.state()["seed"]


def test_measure_throughput(tiny_corpus):  # noqa: F811
    report = measure_throughput(tiny_corpus, batch_size=8, num_batches=3, num_workers=2)
    assert report["num_batches"] == 3 and report["utterances_per_second"] > 0
    assert not loader_threads()
