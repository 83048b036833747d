"""Score files: exact round trip, atomic no-append writes, line-numbered errors, and `darts-jax score`."""
import json
import os

import numpy as np
import pytest

from darts_jax.cli import main
from darts_jax.spoofing.metrics import evaluate_scores
from darts_jax.spoofing.scores import cm_keys, read_asv_scores, read_cm_scores, write_cm_scores

UTT_IDS = ["LA_E_1", "LA_E_2", "LA_E_3", "LA_E_4", "LA_E_5"]
ATTACKS = ["-", "-", "A11", "A11", "A17"]
KEYS = ["bonafide", "bonafide", "spoof", "spoof", "spoof"]
SCORES = [1 / 3, -2.5e-300, 0.0039, 7.0, -1234567.891]

CM_GOOD = "LA_E_1 - bonafide 0.9\nLA_E_2 - bonafide 0.6\nLA_E_3 A07 spoof 0.1\nLA_E_4 A08 spoof 0.7\n"
ASV_GOOD = ("bonafide target 3\nbonafide target 4\nbonafide nontarget 0\nbonafide nontarget 3.5\n"
            "A07 spoof 3.2\nA08 spoof 5\n")


def _write_text(tmp_path, text, name="scores.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_round_trip_is_exact(tmp_path):
    path = tmp_path / "cm.txt"
    write_cm_scores(path, UTT_IDS, ATTACKS, KEYS, np.array(SCORES))
    trials = read_cm_scores(path)
    assert trials.utt_ids.tolist() == UTT_IDS
    assert trials.attacks.tolist() == ATTACKS
    assert cm_keys(trials.labels) == KEYS
    assert trials.scores.tolist() == SCORES
    assert path.read_text().splitlines()[2] == "LA_E_3 A11 spoof 0.0039"
    assert os.listdir(tmp_path) == ["cm.txt"]


def test_write_refuses_to_replace_and_never_appends(tmp_path):
    path = tmp_path / "cm.txt"
    write_cm_scores(path, UTT_IDS, ATTACKS, KEYS, SCORES)
    before = path.read_text()
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        write_cm_scores(path, UTT_IDS, ATTACKS, KEYS, [0.0] * 5)
    assert path.read_text() == before
    write_cm_scores(path, UTT_IDS[:3], ATTACKS[:3], KEYS[:3], [5.0, 6.0, 7.0], overwrite=True)
    assert read_cm_scores(path).scores.tolist() == [5.0, 6.0, 7.0]
    assert os.listdir(tmp_path) == ["cm.txt"]


def test_write_needs_an_existing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        write_cm_scores(tmp_path / "missing" / "cm.txt", UTT_IDS, ATTACKS, KEYS, SCORES)


@pytest.mark.parametrize("utt_ids, keys, scores, match", [
    (UTT_IDS[:4], KEYS, SCORES, "lengths"),
    (UTT_IDS, KEYS[:4] + ["fake"], SCORES, "LA_E_5 has key 'fake'"),
    (UTT_IDS, KEYS, SCORES[:4] + [float("nan")], "LA_E_5 has a non-finite score"),
    (UTT_IDS[:4] + ["LA E 5"], KEYS, SCORES, "without spaces"),
    (UTT_IDS[:4] + ["LA_E_1"], KEYS, SCORES, "duplicates"),
])
def test_write_rejects_bad_trials(tmp_path, utt_ids, keys, scores, match):
    path = tmp_path / "cm.txt"
    with pytest.raises(ValueError, match=match):
        write_cm_scores(path, utt_ids, ATTACKS, keys, scores)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("text, match", [
    ("LA_E_1 - bonafide 0.9\nLA_E_2 A07 spoof\n", r"line 2: expected 4 columns `utt_id attack_id key score`, found 3"),
    ("LA_E_1 - bonafide 0.9\nLA_E_2 A07 spoof 0.1 extra\n", r"line 2: expected 4 columns .*found 5"),
    ("LA_E_1 - bonafide 0.9\n\nLA_E_2 A07 spoof high\n", r"line 3: score 'high' is not a number"),
    ("LA_E_1 - bonafide nan\nLA_E_2 A07 spoof 0.1\n", r"line 1: score 'nan' is not finite"),
    ("LA_E_1 - bonafide 0.9\nLA_E_2 A07 spoof -inf\n", r"line 2: score '-inf' is not finite"),
    ("LA_E_1 - bonafide 0.9\nLA_E_2 A07 fake 0.1\n", r"line 2: key 'fake' must be one of bonafide, spoof"),
    (CM_GOOD + "LA_E_2 A07 spoof 0.2\n", r"line 5: utt_id LA_E_2 already appears on line 2"),
    ("LA_E_3 A07 spoof 0.1\n", r"no 'bonafide' trials"),
    ("LA_E_1 - bonafide 0.9\n", r"no 'spoof' trials"),
    ("", r"no 'bonafide' trials"),
])
def test_bad_cm_score_files(tmp_path, text, match):
    path = _write_text(tmp_path, text)
    with pytest.raises(ValueError, match=match) as error:
        read_cm_scores(path)
    assert str(path) in str(error.value)


def test_missing_score_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="CM score file .*nope.txt does not exist"):
        read_cm_scores(tmp_path / "nope.txt")


def test_read_asv_scores(tmp_path):
    trials = read_asv_scores(_write_text(tmp_path, ASV_GOOD))
    assert trials.sources.tolist() == ["bonafide"] * 4 + ["A07", "A08"]
    assert trials.keys.tolist() == ["target"] * 2 + ["nontarget"] * 2 + ["spoof"] * 2
    assert trials.scores.tolist() == [3.0, 4.0, 0.0, 3.5, 3.2, 5.0]


@pytest.mark.parametrize("text, match", [
    (ASV_GOOD + "A07 spoof\n", r"line 7: expected 3 columns `source key score`, found 2"),
    (ASV_GOOD + "A07 impostor 0.3\n", r"line 7: key 'impostor' must be one of target, nontarget, spoof"),
    ("bonafide target x\n" + ASV_GOOD, r"line 1: score 'x' is not a number"),
    (ASV_GOOD.replace("A07 spoof 3.2\nA08 spoof 5\n", ""), r"no 'spoof' trials"),
])
def test_bad_asv_score_files(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        read_asv_scores(_write_text(tmp_path, text))


def test_score_command_json_without_asv(tmp_path, capsys):
    cm_path = _write_text(tmp_path, CM_GOOD, "cm.txt")
    assert main(["score", "--cm-scores", str(cm_path), "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    printed = json.loads(lines[-1])
    assert printed == evaluate_scores(read_cm_scores(cm_path))
    assert printed["min_tdcf"] is None
    assert any("no ASV scores" in line for line in lines[:-1])
    # Sorted .1s .6b .7s .9b: points (0,1) (0,.5) (.5,.5) -> EER 50 %; A07 alone is separated: 0 %.
    assert printed["eer_percent"] == 50.0
    assert printed["per_attack"]["A07"]["eer_percent"] == 0.0


def test_score_command_with_asv(tmp_path, capsys):
    cm_path = _write_text(tmp_path, CM_GOOD, "cm.txt")
    asv_path = _write_text(tmp_path, ASV_GOOD, "asv.txt")
    assert main(["score", "--cm-scores", str(cm_path), "--asv-scores", str(asv_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert printed == evaluate_scores(read_cm_scores(cm_path), read_asv_scores(asv_path))
    # ASV sorted 0n 3t 3.5n 4t: EER threshold 3, P_fa = 1/2, P_miss = 0, and both spoofs pass (>= 3):
    # C1 = .9405 - .0095 * 10 * .5 = .893, C2 = .5. CM curve (0,1) (0,.5) (.5,.5) (.5,0) (1,0):
    # t(s) = (C1/C2) P_miss + P_fa is smallest at (0, .5).
    assert printed["min_tdcf"] == pytest.approx(0.5, rel=1e-12)
    assert set(printed["per_attack"]) == {"A07", "A08"}


def test_score_command_without_json_prints_only_the_report(tmp_path, capsys):
    cm_path = _write_text(tmp_path, CM_GOOD, "cm.txt")
    assert main(["score", "--cm-scores", str(cm_path)]) == 0
    assert "{" not in capsys.readouterr().out


def test_score_command_reports_bad_file(tmp_path, capsys):
    cm_path = _write_text(tmp_path, CM_GOOD + "LA_E_9 A07 spoof oops\n", "cm.txt")
    assert main(["score", "--cm-scores", str(cm_path)]) == 2
    assert "line 5: score 'oops' is not a number" in capsys.readouterr().err


def test_a_latin1_score_file_is_named_with_its_line(tmp_path):
    path = tmp_path / "scores.txt"
    path.write_bytes("LA_E_1 - bonafide 0.9\nLA_E_2 A07 spoof 0.1\nLA_E_é3 - bonafide 0.5\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{path}, line 3: not UTF-8 text \(byte 0xe9 at column 6\)"):
        read_cm_scores(path)


def test_a_folder_is_not_a_score_file(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; give the score file itself"):
        read_cm_scores(tmp_path)


def test_an_output_path_is_checked_before_any_work(tmp_path):
    from darts_jax.spoofing.scores import check_writable

    with pytest.raises(IsADirectoryError, match="it is a folder; give a file name"):
        check_writable(tmp_path)
    existing = tmp_path / "scores.txt"
    existing.write_text("mine")
    with pytest.raises(FileExistsError, match="already exists"):
        check_writable(existing)
    check_writable(existing, overwrite=True)
    assert existing.read_text() == "mine"
