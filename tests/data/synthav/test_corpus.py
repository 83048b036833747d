"""SynthAV: the planted structure (sync in real clips, none in lip-sync ones), determinism, disjoint splits,
and refusals that keep a user's folders intact."""
import json

import numpy as np
import pytest

from darts_jax.data.synthav import corpus, render
from darts_jax.data.synthav.corpus import CATEGORIES, load_split, make_clip, make_corpus, split_faces


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("synthav") / "tiny", "tiny", seed=0, say=lambda _: None)


def _mouth_darkness(frames_TxHxW):
    """Measured from the pixels alone: how dark the mouth region is in each frame (1 - mean intensity)."""
    return 1.0 - frames_TxHxW[:, 19:29, 9:24].mean(axis=(1, 2))


def _audio_envelope(audio_S, frames: int):
    """RMS of the audio over each frame's span, on a log scale."""
    return np.log([np.sqrt(np.mean(span ** 2)) + 1e-6 for span in np.array_split(audio_S, frames)])


def _sync(frames, audio):
    return np.corrcoef(_mouth_darkness(frames), _audio_envelope(audio, len(frames)))[0, 1]


def test_real_clips_are_in_sync_and_lip_sync_clips_are_not():
    faces = split_faces(0)["train"]
    sync = {c: [] for c in ("RVRA", "RVFA", "LS")}
    for index in range(24):
        for category in sync:
            frames, audio, _ = make_clip(3, "train", index, category, faces)
            sync[category].append(_sync(frames / 255.0, audio / 32768.0))
    real, spoofed, lip_sync = (np.array(sync[c]) for c in ("RVRA", "RVFA", "LS"))
    # Mouth and voice move together in real clips (also when a spoofing attack voices the same plan) ...
    assert np.median(real) > 0.5 and np.median(spoofed) > 0.5
    # ... and not in lip-sync clips, whose audio is another utterance of the same speaker.
    assert abs(np.median(lip_sync)) < 0.3
    assert np.mean(real > np.median(lip_sync)) > 0.85


def test_lip_sync_streams_are_each_drawn_as_real_ones():
    """The lip-sync video is a real clip's video (same face, same plan) and its audio a real voice: each
    stream alone is drawn exactly as in RVRA, only their pairing differs."""
    faces = split_faces(0)["train"]
    records = [make_clip(5, "train", i, c, faces)[2] for i in range(8) for c in ("RVRA", "LS")]
    assert all(r["attack"] == "-" and r["forgery"] == "-" for r in records)
    levels = {c: [np.sqrt(np.mean((make_clip(5, "train", i, c, faces)[1] / 32768.0) ** 2)) for i in range(8)]
              for c in ("RVRA", "LS")}
    assert abs(np.log(np.median(levels["RVRA"]) / np.median(levels["LS"]))) < 0.5


def test_clips_are_deterministic_per_seed_and_index():
    faces = split_faces(0)["dev"]
    a, b, c = (make_clip(seed, "dev", index, "FVFA", faces) for seed, index in ((1, 2), (1, 2), (1, 3)))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]
    assert not np.array_equal(a[1], c[1])
    assert a[2]["attack"] != "-" and a[2]["forgery"] in render.VIDEO_FORGERIES


def test_splits_have_disjoint_faces_and_speakers_and_balanced_categories(tiny):
    manifest = json.loads((tiny / corpus.MANIFEST).read_text())
    faces = {s: set(manifest["faces"][s]) for s in corpus.SPLITS}
    assert not (faces["train"] & faces["dev"] or faces["train"] & faces["eval"] or faces["dev"] & faces["eval"])
    for split in corpus.SPLITS:
        clips = manifest["clips"][split]
        assert {c["face"] for c in clips} <= faces[split]
        counts = {c: sum(r["category"] == c for r in clips) for c in CATEGORIES}
        assert set(counts.values()) == {corpus.SIZES["tiny"][split]}
    speakers = {s: {c["speaker"] for c in manifest["clips"][s]} for s in corpus.SPLITS}
    assert not (speakers["train"] & speakers["eval"] or speakers["dev"] & speakers["eval"])
    train = load_split(tiny, "train")
    assert train.frames_NxTxHxW.shape == (len(train.labels), render.FRAMES, render.FRAME_SIZE, render.FRAME_SIZE)
    assert np.array_equal(train.labels, (train.categories == "RVRA").astype(np.int32))
    # Not sorted by class: the first fifth of the file is not all one category.
    assert len(set(train.categories[:len(train.labels) // 5])) > 1


def test_remaking_reuses_and_other_settings_are_refused(tiny, tmp_path):
    before = (tiny / "train.npz").stat().st_mtime_ns
    assert make_corpus(tiny, "tiny", seed=0, say=lambda _: None) == tiny
    assert (tiny / "train.npz").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="choose another --out"):
        make_corpus(tiny, "tiny", seed=1, say=lambda _: None)
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty"):
        make_corpus(tmp_path, "tiny", seed=0, say=lambda _: None)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_a_damaged_split_is_named(tiny, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    manifest = json.loads((tiny / corpus.MANIFEST).read_text())
    manifest["clips"]["dev"][0]["label"] = 1 - manifest["clips"]["dev"][0]["label"]
    (copy / corpus.MANIFEST).write_text(json.dumps(manifest))
    (copy / "dev.npz").write_bytes((tiny / "dev.npz").read_bytes())
    with pytest.raises(ValueError, match="dev.npz.*do not match"):
        load_split(copy, "dev")
    with pytest.raises(FileNotFoundError, match="make-synthetic-av"):
        load_split(tmp_path, "dev")


def test_extra_lip_sync_clips_follow_the_unchanged_ones():
    base = corpus.split_categories("small", "train", seed=4)
    more = corpus.split_categories("small", "train", seed=4, extra_lipsync_train=30)
    # The corpus without extras is a prefix (clips draw from (seed, split, index), so they are the same clips) ...
    assert np.array_equal(more[:base.size], base)
    # ... and the extras are RVRA and LS only, as many of each, not sorted by category.
    extra = more[base.size:]
    assert extra.size == 60 and np.sum(extra == "RVRA") == 30 and np.sum(extra == "LS") == 30
    assert len(set(extra[:15])) == 2
    for split in ("dev", "eval"):
        assert np.array_equal(corpus.split_categories("small", split, 4, 30),
                              corpus.split_categories("small", split, 4))
    with pytest.raises(ValueError, match="extra-lipsync-train"):
        make_corpus("unused", "tiny", extra_lipsync_train=-1)


def test_the_extra_clip_setting_is_part_of_a_corpus_identity(tiny, tmp_path):
    with pytest.raises(ValueError, match="choose another --out"):
        make_corpus(tiny, "tiny", seed=0, extra_lipsync_train=2, say=lambda _: None)
    # A corpus written before the setting existed has none, so it is still reused as such.
    old = tmp_path / "old"
    old.mkdir()
    manifest = json.loads((tiny / corpus.MANIFEST).read_text())
    assert manifest.pop("extra_lipsync_train") == 0
    (old / corpus.MANIFEST).write_text(json.dumps(manifest))
    for split in corpus.SPLITS:
        (old / f"{split}.npz").write_bytes((tiny / f"{split}.npz").read_bytes())
    assert make_corpus(old, "tiny", seed=0, say=lambda _: None) == old
    with pytest.raises(ValueError, match="choose another --out"):
        make_corpus(old, "tiny", seed=0, extra_lipsync_train=2, say=lambda _: None)
