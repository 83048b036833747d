"""Corpus readers on files in the official formats, the search halves, and every protocol error."""
import collections
import re
from pathlib import Path

import pytest

from darts_jax.data.protocols import (
    la2019_line,
    load_asvspoof2021,
    load_in_the_wild,
    load_partition,
    scan_partition,
    split_search_halves,
)

# Official ASVspoof 2019 LA CM lines: SPEAKER UTT - SYSTEM KEY, bona fide first, then attack blocks.
TRAIN_LINES = [
    "LA_0079 LA_T_1138215 - - bonafide",
    "LA_0080 LA_T_1271820 - - bonafide",
    "LA_0079 LA_T_1272637 - - bonafide",
    "LA_0081 LA_T_1000137 - A01 spoof",
    "LA_0079 LA_T_1004644 - A01 spoof",
    "LA_0080 LA_T_1005015 - A01 spoof",
    "LA_0080 LA_T_1007571 - A02 spoof",
    "LA_0081 LA_T_1007663 - A02 spoof",
]


def write(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def la_folder(root: Path, in_protocol_folder: bool) -> Path:
    la = root / "LA"
    folder = la / "ASVspoof2019_LA_cm_protocols" if in_protocol_folder else la
    write(folder / "ASVspoof2019.LA.cm.train.trn.txt", TRAIN_LINES)
    write(folder / "ASVspoof2019.LA.cm.dev.trl.txt", ["LA_0069 LA_D_1047731 - - bonafide",
                                                       "LA_0070 LA_D_1105538 - A03 spoof"])
    write(folder / "ASVspoof2019.LA.cm.eval.trl.txt", ["LA_0039 LA_E_2834763 - A11 spoof",
                                                        "LA_0014 LA_E_8877452 - - bonafide"])
    return la


@pytest.mark.parametrize("in_protocol_folder", [False, True])
def test_la2019_columns_labels_and_paths(tmp_path, in_protocol_folder):
    la = la_folder(tmp_path, in_protocol_folder)
    train = load_partition(la, "train")
    assert [u.utt_id for u in train] == [line.split()[1] for line in TRAIN_LINES]
    first, spoof = train[0], train[3]
    assert (first.speaker, first.attack, first.label) == ("LA_0079", "-", 1)
    assert (spoof.speaker, spoof.attack, spoof.label) == ("LA_0081", "A01", 0)
    assert first.path == la / "ASVspoof2019_LA_train" / "flac" / "LA_T_1138215.flac"
    evaluation = load_partition(la, "eval")
    assert [(u.utt_id, u.attack, u.label) for u in evaluation] == [("LA_E_2834763", "A11", 0),
                                                                   ("LA_E_8877452", "-", 1)]
    assert evaluation[0].path.parent == la / "ASVspoof2019_LA_eval" / "flac"
    assert load_partition(la, "dev")[1].path.parent == la / "ASVspoof2019_LA_dev" / "flac"


def test_la2019_line_round_trip(tmp_path):
    la = la_folder(tmp_path, False)
    assert [la2019_line(u) for u in load_partition(la, "train")] == TRAIN_LINES


def test_search_halves_are_stratified_disjoint_deterministic_and_in_protocol_order():
    from darts_jax.data.protocols import Utterance
    train = [Utterance(f"U{i}", f"S{i % 5}", attack, int(attack == "-"), Path(f"U{i}.flac"))
             for i, attack in enumerate(["-"] * 11 + ["A01"] * 20 + ["A02"] * 7)]
    trn_h, trn_t = split_search_halves(train)
    assert sorted(trn_h + trn_t, key=train.index) == train
    assert not {u.utt_id for u in trn_h} & {u.utt_id for u in trn_t}
    assert trn_h == sorted(trn_h, key=train.index) and trn_t == sorted(trn_t, key=train.index)
    per_half = [collections.Counter(u.attack for u in half) for half in (trn_h, trn_t)]
    for attack, total in collections.Counter(u.attack for u in train).items():
        assert per_half[0][attack] == (total + 1) // 2 and per_half[1][attack] == total // 2
    assert split_search_halves(list(train)) == (trn_h, trn_t)
    # Shuffled within each group, not simply the first half of each block.
    assert [u.utt_id for u in trn_h if u.attack == "A01"] != [f"U{i}" for i in range(11, 21)]


def test_search_halves_derived_when_absent_and_read_when_present(tmp_path):
    la = la_folder(tmp_path, True)
    derived = load_partition(la, "trn_h"), load_partition(la, "trn_t")
    assert derived == split_search_halves(load_partition(la, "train"))
    assert derived[0][0].path.parent == la / "ASVspoof2019_LA_train" / "flac"
    # The authors' files go directly under LA/ (or in split_protocols/) and then win.
    write(la / "ASVspoof2019.LA.cm.train.trn_h.txt", TRAIN_LINES[:2] + TRAIN_LINES[3:4])
    write(la / "split_protocols" / "ASVspoof2019.LA.cm.train.trn_t.txt", TRAIN_LINES[2:3] + TRAIN_LINES[5:])
    assert [u.utt_id for u in load_partition(la, "trn_h")] == ["LA_T_1138215", "LA_T_1271820", "LA_T_1000137"]
    assert [u.utt_id for u in load_partition(la, "trn_t")] == [line.split()[1]
                                                               for line in TRAIN_LINES[2:3] + TRAIN_LINES[5:]]


@pytest.mark.parametrize("line, message", [
    ("LA_0079 LA_T_9 - bonafide", "expected 5 columns"),
    ("LA_0079 LA_T_9 - - genuine", "unknown label 'genuine'"),
    ("LA_0079 LA_T_9 - A01 bonafide", "bona fide utterance LA_T_9 has system 'A01'"),
    ("LA_0079 LA_T_9 - - spoof", "spoof utterance LA_T_9 has system '-'"),
    ("LA_0079 LA_T_1000137 - A01 spoof", "duplicate utterance ID LA_T_1000137 (first listed on line 4)"),
])
def test_la2019_bad_lines_name_file_and_line(tmp_path, line, message):
    la = la_folder(tmp_path, False)
    protocol = write(la / "ASVspoof2019.LA.cm.train.trn.txt", TRAIN_LINES + [line])
    with pytest.raises(ValueError) as err:
        load_partition(la, "train")
    assert f"{protocol}:{len(TRAIN_LINES) + 1}: {message}" in str(err.value)


@pytest.mark.parametrize("lines, message", [
    ([], "no trials; the protocol is empty"),
    (TRAIN_LINES[:3], "no spoof trials among its 3; a partition needs both classes"),
    (TRAIN_LINES[3:], "no bona fide trials among its 5"),
    (TRAIN_LINES + ["LA_0079 LA_T_9 - A99 spoof"], ":9: spoof utterance LA_T_9 has system 'A99'; "
                                                   "the train partition holds A01-A06"),
    (TRAIN_LINES + ["LA_0079 LA_T_9 - A07 spoof"], ":9: spoof utterance LA_T_9 has system 'A07'; the train partition "
                                                   "holds A01-A06 (eval systems belong to eval only)"),
])
def test_protocols_that_would_mislead_a_run_are_refused(tmp_path, lines, message):
    la = la_folder(tmp_path, False)
    write(la / "ASVspoof2019.LA.cm.train.trn.txt", lines)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_partition(la, "train")


def test_every_protocol_problem_is_collected(tmp_path):
    la = la_folder(tmp_path, False)
    write(la / "ASVspoof2019.LA.cm.train.trn.txt", ["bad", *TRAIN_LINES[:2], "x LA_T_1 - - maybe"])
    utterances, problems = scan_partition(la, "train")
    assert len(utterances) == 2
    assert [p.split(": ")[0].rsplit(":", 1)[1] for p in problems] == ["1", "4"]
    with pytest.raises(ValueError, match="and 1 more problem"):
        load_partition(la, "train")


def test_missing_protocol_and_wrong_folder(tmp_path):
    la = la_folder(tmp_path, False)
    with pytest.raises(ValueError, match=r"no ASVspoof2019.LA.cm.train.trn.txt .* \(did you mean .*LA\?\)"):
        load_partition(tmp_path, "train")
    (la / "ASVspoof2019.LA.cm.dev.trl.txt").unlink()
    with pytest.raises(ValueError, match="no ASVspoof2019.LA.cm.dev.trl.txt"):
        load_partition(la, "dev")
    with pytest.raises(ValueError, match="partition: 'test'"):
        load_partition(la, "test")


# ASVspoof 2021 keys: SPEAKER UTT CODEC SOURCE/TRANSMISSION ATTACK KEY TRIM SUBSET [DF: VOCODER ...].
LA2021_KEYS = [
    "LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
    "LA_0009 LA_E_5464494 none - bonafide bonafide notrim progress",
    "LA_0012 LA_E_6126471 g722 loc_tx bonafide bonafide notrim eval",
]
DF2021_KEYS = [
    "LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder - - - -",
    "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval neural_vocoder_nonautoregressive Task1 "
    "team20 FF E",
    "LA_0043 DF_E_2000026 mp3m4a asvspoof - bonafide notrim eval bonafide - - - -",
]


def test_asvspoof2021_la_keys(tmp_path):
    write(tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt", LA2021_KEYS)
    flac = tmp_path / "ASVspoof2021_LA_eval" / "flac"
    flac.mkdir(parents=True)
    for utt_id in ("LA_E_9332881", "LA_E_6126471", "LA_E_5464494"):
        (flac / f"{utt_id}.flac").touch()
    trials = load_asvspoof2021(tmp_path, "LA")
    assert [(u.utt_id, u.speaker, u.attack, u.label) for u in trials] == [
        ("LA_E_9332881", "LA_0009", "A07", 0), ("LA_E_6126471", "LA_0012", "-", 1)]
    assert trials[0].path == tmp_path / "ASVspoof2021_LA_eval" / "flac" / "LA_E_9332881.flac"
    assert len(load_asvspoof2021(tmp_path, "LA", subset=None)) == 3
    assert [u.utt_id for u in load_asvspoof2021(tmp_path, "LA", subset="progress")] == ["LA_E_5464494"]


def test_asvspoof2021_df_keys_in_parts(tmp_path):
    keys = write(tmp_path / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt", DF2021_KEYS)
    for part, utt_id in (("00", "DF_E_2000011"), ("01", "DF_E_2000013"), ("01", "DF_E_2000026")):
        flac = tmp_path / f"ASVspoof2021_DF_eval_part{part}" / "ASVspoof2021_DF_eval" / "flac"
        flac.mkdir(parents=True, exist_ok=True)
        (flac / f"{utt_id}.flac").touch()
    trials = load_asvspoof2021(tmp_path, "DF", subset=None)
    assert [(u.utt_id, u.attack, u.label) for u in trials] == [
        ("DF_E_2000011", "A14", 0), ("DF_E_2000013", "Task1-team20", 0), ("DF_E_2000026", "-", 1)]
    assert all(u.path.is_file() for u in trials)
    assert trials[0].path.parts[-4] == "ASVspoof2021_DF_eval_part00"
    assert load_asvspoof2021(tmp_path, "DF", key_file=keys) == [u for u in trials if u.utt_id != "DF_E_2000011"]


@pytest.mark.parametrize("line, message", [
    ("LA_0009 LA_E_1 alaw ita_tx A07 spoof notrim", "expected at least 8 columns"),
    ("LA_0009 LA_E_1 alaw ita_tx A07 fake notrim eval", "unknown label 'fake'"),
    ("LA_0009 LA_E_1 alaw ita_tx - spoof notrim eval", "spoof utterance LA_E_1 has no attack ID"),
    ("LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval", "duplicate utterance ID LA_E_9332881"),
])
def test_asvspoof2021_bad_lines(tmp_path, line, message):
    keys = write(tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt", LA2021_KEYS + [line])
    (tmp_path / "ASVspoof2021_LA_eval" / "flac").mkdir(parents=True)
    with pytest.raises(ValueError, match=f"{keys}:4: {message}"):
        load_asvspoof2021(tmp_path, "LA")


def test_asvspoof2021_missing_keys_or_audio(tmp_path):
    with pytest.raises(ValueError, match="no ASVspoof 2021 DF trial_metadata.txt"):
        load_asvspoof2021(tmp_path, "DF")
    write(tmp_path / "DF-keys-stage-1" / "keys" / "CM" / "trial_metadata.txt", DF2021_KEYS)
    with pytest.raises(ValueError, match="no ASVspoof2021_DF_eval/flac folder"):
        load_asvspoof2021(tmp_path, "DF")


def test_in_the_wild_meta_csv(tmp_path):
    write(tmp_path / "meta.csv", ["file,speaker,label", "0.wav,Alec Guinness,spoof",
                                  '4.wav,"Hitchens, Christopher",bona-fide'])
    for name in ("0.wav", "4.wav"):
        (tmp_path / name).touch()
    utterances = load_in_the_wild(tmp_path)
    assert [(u.utt_id, u.speaker, u.attack, u.label, u.path) for u in utterances] == [
        ("0", "Alec Guinness", "unknown", 0, tmp_path / "0.wav"),
        ("4", "Hitchens, Christopher", "-", 1, tmp_path / "4.wav")]


def _la2021_with_audio(tmp_path, audio_ids):
    write(tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt", LA2021_KEYS)
    flac = tmp_path / "ASVspoof2021_LA_eval" / "flac"
    flac.mkdir(parents=True)
    for utt_id in audio_ids:
        (flac / f"{utt_id}.flac").touch()


@pytest.mark.parametrize("audio_ids, message", [
    # One trial of the key (in the progress subset, so not even one the eval subset reads) has no audio.
    (["LA_E_9332881", "LA_E_6126471"], "1 of its 3 utterance(s) have no flac file (first: LA_E_5464494)"),
    # Audio of another release beside the right one.
    (["LA_E_9332881", "LA_E_6126471", "LA_E_5464494", "LA_E_1000001", "LA_E_1000002"],
     "2 flac file(s) are not in it (first: LA_E_1000001, LA_E_1000002)"),
])
def test_asvspoof2021_key_not_matching_the_audio_is_refused(tmp_path, audio_ids, message):
    _la2021_with_audio(tmp_path, audio_ids)
    with pytest.raises(ValueError, match=re.escape(message)) as raised:
        load_asvspoof2021(tmp_path, "LA")
    assert "trial_metadata.txt: the key does not match the audio" in str(raised.value)


def test_in_the_wild_listing_not_matching_the_audio_is_refused(tmp_path):
    write(tmp_path / "meta.csv", ["file,speaker,label"] + [f"{i}.wav,A,spoof" for i in range(8)])
    for i in (0, 1, 9):
        (tmp_path / f"{i}.wav").touch()
    with pytest.raises(ValueError, match=re.escape("6 of its 8 utterance(s) have no wav file (first: 2, 3, 4, 5, 6); "
                                                   "1 wav file(s) are not in it (first: 9)")):
        load_in_the_wild(tmp_path)


@pytest.mark.parametrize("rows, message", [
    (["file,label", "0.wav,spoof"], "meta.csv:1: header lacks column(s) ['speaker']"),
    (["file,speaker,label", "0.wav,A,fake"], "meta.csv:2: unknown label 'fake'"),
    (["file,speaker,label", "0.wav,A"], "meta.csv:2: expected 3 comma-separated fields, found 2"),
    (["file,speaker,label", "0.wav,A,spoof", "0.wav,B,spoof"], "meta.csv:3: duplicate utterance ID 0"),
])
def test_in_the_wild_bad_rows(tmp_path, rows, message):
    write(tmp_path / "meta.csv", rows)
    with pytest.raises(ValueError) as err:
        load_in_the_wild(tmp_path)
    assert message in str(err.value)


def test_in_the_wild_missing_meta(tmp_path):
    with pytest.raises(ValueError, match="meta.csv: not found"):
        load_in_the_wild(tmp_path)
