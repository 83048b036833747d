"""SynthSpoof: the ASVspoof 2019 LA layout, determinism and caching rules (shortcuts: test_no_shortcuts)."""
import collections
import json

import numpy as np
import pytest
import soundfile as sf

from darts_jax.data.protocols import EVAL_ATTACKS, TRAIN_ATTACKS, load_partition
from darts_jax.data.synthspoof.attacks import SYSTEMS, spoof
from darts_jax.data.synthspoof.corpus import SIZES, _Job, _write_job, make_corpus
from darts_jax.data.synthspoof.speech import draw_speaker, plan_utterance, render


def test_layout_is_read_by_the_asvspoof_reader(tiny_corpus):  # noqa: F811
    protocols = tiny_corpus / "ASVspoof2019_LA_cm_protocols"
    assert sorted(p.name for p in protocols.iterdir()) == [
        "ASVspoof2019.LA.cm.dev.trl.txt", "ASVspoof2019.LA.cm.eval.trl.txt", "ASVspoof2019.LA.cm.train.trn.txt"]
    speakers = {}
    for partition, shape in SIZES["tiny"].items():
        utterances = load_partition(tiny_corpus, partition)
        attacks = TRAIN_ATTACKS if partition != "eval" else EVAL_ATTACKS
        counts = collections.Counter(u.attack for u in utterances)
        assert counts == {"-": shape.bona_fide, **{a: shape.per_attack for a in attacks}}
        assert all(u.utt_id.startswith({"train": "LA_T_", "dev": "LA_D_", "eval": "LA_E_"}[partition])
                   for u in utterances)
        speakers[partition] = {u.speaker for u in utterances}
        assert len(speakers[partition]) == shape.speakers
        assert sorted(p.name for p in utterances[0].path.parent.iterdir()) == sorted(
            u.path.name for u in utterances)
        info = sf.info(utterances[-1].path)
        assert (info.samplerate, info.channels, info.format, info.subtype) == (16000, 1, "FLAC", "PCM_16")
    assert not speakers["train"] & speakers["eval"]


def test_simulated_asv_scores_and_readme(tiny_corpus):  # noqa: F811
    lines = (tiny_corpus / "ASVspoof2019_LA_asv_scores" / "ASVspoof2019.LA.asv.eval.gi.trl.scores.txt"
             ).read_text().splitlines()
    keys = collections.Counter(tuple(line.split()[:2]) for line in lines)
    shape = SIZES["tiny"]["eval"]
    assert keys[("bonafide", "target")] == shape.bona_fide
    assert keys[("bonafide", "nontarget")] == 3 * shape.bona_fide
    assert all(keys[(attack, "spoof")] == shape.per_attack for attack in EVAL_ATTACKS)
    assert "SIMULATED" in (tiny_corpus / "README.txt").read_text()


def test_same_seed_gives_byte_identical_files(tiny_corpus, tmp_path):  # noqa: F811
    """The corpus was written by 2 processes; one process rewrites a sample of it here."""
    manifest = json.loads((tiny_corpus / "synthspoof.json").read_text())
    assert (manifest["size"], manifest["seed"]) == ("tiny", 0)
    for partition in ("train", "eval"):
        utterances = load_partition(tiny_corpus, partition)
        first_of_each = {}
        for index, utt in enumerate(utterances):
            first_of_each.setdefault(utt.attack, (index, utt))
        for attack, (index, utt) in first_of_each.items():
            copy = tmp_path / f"{partition}_{utt.path.name}"
            _write_job(_Job(str(copy), 0, partition, index, int(utt.speaker.split("_")[1]), attack))
            assert copy.read_bytes() == utt.path.read_bytes(), f"{partition} {attack} differs"
            if attack == "-":
                _write_job(_Job(str(copy), 1, partition, index, int(utt.speaker.split("_")[1]), attack))
                assert copy.read_bytes() != utt.path.read_bytes()


def test_a_cached_corpus_with_a_truncated_file_is_not_taken_for_complete(tiny_corpus, tmp_path):  # noqa: F811
    import shutil

    copy = shutil.copytree(tiny_corpus, tmp_path / "LA")
    victim = load_partition(copy, "dev")[2].path
    victim.write_bytes(victim.read_bytes()[:-100])
    with pytest.raises(FileExistsError, match="not a complete SynthSpoof tiny corpus with seed 0"):
        make_corpus(copy, size="tiny", seed=0)


def test_complete_corpus_is_reused_and_other_folders_are_refused(tiny_corpus, tmp_path, capsys):  # noqa: F811
    before = {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*")}
    assert make_corpus(tiny_corpus, size="tiny", seed=0) == tiny_corpus
    assert "reusing" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in tiny_corpus.rglob("*")} == before
    with pytest.raises(FileExistsError, match="not a complete SynthSpoof tiny corpus with seed 1"):
        make_corpus(tiny_corpus, size="tiny", seed=1)
    with pytest.raises(FileExistsError, match="not a complete SynthSpoof small corpus"):
        make_corpus(tiny_corpus, size="small", seed=0)
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        make_corpus(tmp_path, size="tiny")
    assert (tmp_path / "mine.txt").read_text() == "user data"
    with pytest.raises(ValueError, match="size: 'huge'"):
        make_corpus(tmp_path / "new", size="huge")


def test_a_corpus_missing_a_file_is_not_reused(tiny_corpus, tmp_path):  # noqa: F811
    import shutil
    copy = tmp_path / "copy"
    shutil.copytree(tiny_corpus, copy)
    next((copy / "ASVspoof2019_LA_dev" / "flac").iterdir()).unlink()
    with pytest.raises(FileExistsError, match="not a complete SynthSpoof tiny corpus"):
        make_corpus(copy, size="tiny", seed=0)


def test_every_attack_keeps_length_and_a16_a19_repeat_train_systems():
    rng = np.random.default_rng(0)
    speaker = draw_speaker(rng)
    plan = plan_utterance(speaker, 12000, rng)
    bona = render(plan, speaker, np.random.default_rng(1))
    assert set(SYSTEMS) == set(TRAIN_ATTACKS) | set(EVAL_ATTACKS)
    assert SYSTEMS["A16"] == SYSTEMS["A04"] and SYSTEMS["A19"] == SYSTEMS["A06"]
    outputs = {}
    for attack in sorted(SYSTEMS):
        wave = spoof(attack, plan, speaker, np.random.default_rng(1))
        assert wave.shape == bona.shape and np.all(np.isfinite(wave)) and np.std(wave) > 0
        outputs[attack] = wave
    np.testing.assert_array_equal(outputs["A16"], outputs["A04"])
    assert not any(np.allclose(outputs[a], bona) for a in outputs)
    with pytest.raises(ValueError, match="attack: 'A20'"):
        spoof("A20", plan, speaker, rng)
