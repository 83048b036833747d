"""check_corpus and `darts-jax check-data`: every problem of a corpus listed at once."""
import shutil

import numpy as np
import pytest
import soundfile as sf

from darts_jax.cli import main
from darts_jax.data.check import check_corpus
from darts_jax.data.protocols import LA2019_PROTOCOL_FOLDER, load_partition


def test_clean_corpus_has_no_problem(tiny_corpus, capsys):  # noqa: F811
    assert check_corpus(tiny_corpus) == []
    assert main(["check-data", "--data", str(tiny_corpus)]) == 0
    assert "0 problem(s)" in capsys.readouterr().out


@pytest.fixture
def broken_corpus(tiny_corpus, tmp_path):  # noqa: F811
    """A copy of the tiny corpus with one of each kind of problem; returns (folder, expected fragments)."""
    root = tmp_path / "LA"
    shutil.copytree(tiny_corpus, root)
    train, dev, evaluation = (load_partition(root, p) for p in ("train", "dev", "eval"))
    noise = (np.random.default_rng(0).standard_normal(8000) * 1000).astype(np.int16)
    train[0].path.unlink()
    truncated = dev[1].path.read_bytes()
    dev[1].path.write_bytes(truncated[: len(truncated) // 3])
    sf.write(evaluation[0].path, noise, 8000, format="FLAC", subtype="PCM_16")
    sf.write(evaluation[1].path, np.stack([noise, noise], axis=1), 16000, format="FLAC", subtype="PCM_16")
    sf.write(evaluation[2].path, noise, 16000, format="WAV", subtype="PCM_16")
    protocols = root / LA2019_PROTOCOL_FOLDER
    with open(protocols / "ASVspoof2019.LA.cm.train.trn.txt", "a") as f:
        f.write("LA_0001 LA_T_0000001 - A01\n")
    with open(protocols / "ASVspoof2019.LA.cm.dev.trl.txt", "a") as f:
        f.write(f"{dev[0].speaker} {dev[0].utt_id} - - bonafide\n")
    with open(protocols / "ASVspoof2019.LA.cm.eval.trl.txt", "a") as f:
        f.write("LA_0011 LA_E_0000001 - A07 fake\n")
    (root / "ASVspoof2019.LA.cm.train.trn_h.txt").write_text(
        f"{train[1].speaker} {train[1].utt_id} - - bonafide\n")
    (root / "ASVspoof2019.LA.cm.train.trn_t.txt").write_text(
        f"{train[1].speaker} {train[1].utt_id} - - bonafide\n")
    expected = [
        f"ASVspoof2019.LA.cm.train.trn.txt:{len(train) + 1}: expected 5 columns",
        f"ASVspoof2019.LA.cm.dev.trl.txt:{len(dev) + 1}: duplicate utterance ID {dev[0].utt_id}",
        f"ASVspoof2019.LA.cm.eval.trl.txt:{len(evaluation) + 1}: unknown label 'fake'",
        "ASVspoof2019.LA.cm.train.trn_h.txt: no spoof trials among its 1",
        "ASVspoof2019.LA.cm.train.trn_t.txt: no spoof trials among its 1",
        "1 utterance(s) in both trn_h and trn_t",
        f"{train[0].path}: audio file not found",
        f"{dev[1].path}: ",
        f"{evaluation[0].path}: sampled at 8000 Hz",
        f"{evaluation[1].path}: 2 channels",
        f"{evaluation[2].path}: holds WAV audio under a .flac name",
    ]
    return root, expected


def test_every_problem_is_listed_with_its_file_and_line(broken_corpus):
    root, expected = broken_corpus
    problems = check_corpus(root)
    assert len(problems) == len(expected), problems
    for fragment, problem in zip(expected, problems):
        assert fragment in problem
    assert "truncated" in problems[7] or "corrupt or truncated" in problems[7]


def test_check_data_command_exits_non_zero(broken_corpus, capsys):
    root, expected = broken_corpus
    assert main(["check-data", "--data", str(root)]) == 1
    out = capsys.readouterr().out
    assert all(fragment in out for fragment in expected)
    assert f"{len(expected)} problem(s) found" in out


def test_not_a_corpus(tmp_path):
    problems = check_corpus(tmp_path)
    assert len(problems) == 3 and all("--data must name the LA folder" in p for p in problems)
    assert check_corpus(tmp_path / "absent") == [f"{tmp_path / 'absent'}: not a folder; --data must name the "
                                                 f"corpus folder"]


def test_in_the_wild_and_asvspoof2021_folders_are_recognised(tmp_path):
    wild = tmp_path / "release_in_the_wild"
    wild.mkdir()
    (wild / "meta.csv").write_text("file,speaker,label\n0.wav,A,spoof\n1.wav,B,bona-fide\n2.wav,B,real\n")
    sf.write(wild / "0.wav", (np.random.default_rng(1).standard_normal(1600) * 1000).astype(np.int16), 16000,
             subtype="PCM_16")
    problems = check_corpus(wild)
    assert len(problems) == 3
    assert "meta.csv:4: unknown label 'real'" in problems[0]
    assert "2 of its 3 utterance(s) have no wav file (first: 1, 2)" in problems[1]
    assert "1.wav: audio file not found" in problems[2]

    keys = tmp_path / "2021" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("LA_0043 DF_E_2000026 mp3m4a asvspoof - bonafide notrim eval bonafide - - - -\n"
                    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -\n")
    flac = tmp_path / "2021" / "ASVspoof2021_DF_eval" / "flac"
    flac.mkdir(parents=True)
    sf.write(flac / "DF_E_2000026.flac", (np.random.default_rng(2).standard_normal(1600) * 1000).astype(np.int16),
             16000, subtype="PCM_16")
    problems = check_corpus(tmp_path / "2021")
    assert len(problems) == 2 and "1 of its 2 utterance(s) have no flac file (first: DF_E_2000011)" in problems[0]
    assert "DF_E_2000011.flac: audio file not found" in problems[1]
