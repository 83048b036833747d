"""`darts-jax predict` on the files a user has (issue 16 item 2): windows, rates, channels, bad files, output."""
import csv
import io
import json

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from darts_jax import cli
from darts_jax.spoofing.calibration import Calibration
from tests.spoofing.models import make_model_folder

RATE, WINDOW = 16000, 64000


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    return make_model_folder(tmp_path_factory.mktemp("model") / "model", seed=1)


@pytest.fixture(scope="module")
def calibrated_folder(tmp_path_factory):
    calibration = Calibration(slope=2.0, offset=-1.0, prior=0.5, eer_threshold=0.25, dev_eer_percent=10.0,
                              dev_spoof_scores=tuple(np.linspace(-1, 1, 101)), dev_bonafide_trials=50,
                              source="test")
    return make_model_folder(tmp_path_factory.mktemp("calibrated") / "model", seed=1, calibration=calibration)


def segment(seed: int, seconds: float = 4.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * rng.uniform(100, 900) * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)


def write(path, wave, rate=RATE):
    # 32-bit float WAV keeps the samples exactly, so files built from the same segment are the same audio.
    sf.write(path, wave, rate, subtype="FLOAT")
    return path


def run_predict(capsys, *args) -> tuple[int, list[dict], str]:
    code = cli.main(["predict", *map(str, args), "--format", "json"])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_windows_of_a_repeated_segment_score_as_the_segment(model_folder, tmp_path, capsys):
    piece = segment(0)
    single = write(tmp_path / "single.wav", piece)
    repeated = write(tmp_path / "repeated.wav", np.tile(piece, 3))
    for mode in ("mean", "max", "first"):
        code, rows, _ = run_predict(capsys, "--model", model_folder, single, repeated, "--long-audio", mode)
        assert code == 0
        assert rows[1]["windows"] == (1 if mode == "first" else 3)
        assert rows[1]["score"] == pytest.approx(rows[0]["score"], rel=1e-6, abs=1e-6)


def test_a_long_file_is_the_mean_of_its_windows_the_last_one_ending_at_the_end(model_folder, tmp_path, capsys):
    # 10 s: windows [0, 4), [4, 8) and, for the 2 s left, [6, 10).
    wave = np.concatenate([segment(1), segment(2), segment(3, 2.0)])
    files = [write(tmp_path / "long.wav", wave)]
    files += [write(tmp_path / f"w{start}.wav", wave[start * RATE:start * RATE + WINDOW]) for start in (0, 4, 6)]
    code, rows, _ = run_predict(capsys, "--model", model_folder, *files)
    assert code == 0 and rows[0]["windows"] == 3 and rows[0]["seconds"] == pytest.approx(10.0)
    window_scores = [row["score"] for row in rows[1:]]
    assert len(set(window_scores)) == 3  # three different windows, not one scored thrice
    assert rows[0]["score"] == pytest.approx(np.mean(window_scores), rel=1e-6, abs=1e-6)
    code, rows, _ = run_predict(capsys, "--model", model_folder, *files, "--long-audio", "max")
    assert rows[0]["score"] == pytest.approx(max(window_scores), rel=1e-6, abs=1e-6)


def test_stereo_44k_audio_is_mixed_and_resampled_with_a_warning(model_folder, tmp_path, capsys):
    rng = np.random.default_rng(4)
    stereo = (0.2 * rng.standard_normal((44100 * 3, 2))).astype(np.float32)
    recorded = write(tmp_path / "stereo44k.wav", stereo, 44100)
    # The same conversion done independently: channel mean, then polyphase 44.1 -> 16 kHz (160/441).
    mono16k = write(tmp_path / "mono16k.wav", resample_poly(stereo.mean(axis=1), 160, 441).astype(np.float32))
    code, rows, err = run_predict(capsys, "--model", model_folder, recorded, mono16k)
    assert code == 0
    assert rows[0]["notes"] == ["2 channels mixed to mono", "resampled 44100 -> 16000 Hz",
                                "3.00 s repeated to the model's 4 s window"]
    assert f"warning: {recorded}: 2 channels mixed to mono" in err
    assert rows[0]["score"] == pytest.approx(rows[1]["score"], rel=1e-5, abs=1e-5)


def test_a_folder_with_a_corrupt_file_scores_the_rest_and_names_it(model_folder, tmp_path, capsys):
    folder = tmp_path / "incoming"
    (folder / "sub").mkdir(parents=True)
    good = [write(folder / "a.wav", segment(5)), write(folder / "sub" / "b.wav", segment(6, 2.5))]
    bad = folder / "broken.flac"
    bad.write_bytes(b"fLaC" + np.random.default_rng(0).bytes(500))
    (folder / "notes.md").write_text("not audio, not listed")
    code, rows, err = run_predict(capsys, "--model", model_folder, folder)
    assert code == 1
    by_path = {row["path"]: row for row in rows}
    assert sorted(by_path) == sorted(map(str, good + [bad]))
    assert "cannot decode the audio" in by_path[str(bad)]["error"] and by_path[str(bad)]["score"] is None
    for path in good:
        assert by_path[str(path)]["error"] is None and np.isfinite(by_path[str(path)]["score"])
    assert f"could not score {bad}: cannot decode the audio" in err
    assert "1 of 3 file(s) could not be scored" in err


def test_a_list_file_and_decisions_from_the_stored_calibration(calibrated_folder, tmp_path, capsys):
    files = [write(tmp_path / f"{i}.wav", segment(10 + i)) for i in range(3)]
    listing = tmp_path / "files.txt"
    listing.write_text("# my files\n" + "\n".join(p.name for p in files) + "\nmissing.wav\n")
    code, rows, err = run_predict(capsys, "--model", calibrated_folder, listing)
    assert code == 1 and "dev EER threshold 0.25" in err
    assert rows[-1]["path"] == str(tmp_path / "missing.wav") and "not found" in rows[-1]["error"]
    for row in rows[:3]:
        assert row["llr"] == pytest.approx(2.0 * row["score"] - 1.0)
        assert row["decision"] == ("bonafide" if row["score"] >= 0.25 else "spoof")
    # --target-far 0.1 over the 101 dev spoof scores -1, -0.98, ..., 1: 10 may pass (0.82 ... 1), so the
    # threshold is just above the 11th highest, 0.8.
    threshold = min(row["score"] for row in rows[:3]) - 1e-3
    _, rows, _ = run_predict(capsys, "--model", calibrated_folder, *files, "--threshold", threshold)
    assert [row["decision"] for row in rows] == ["bonafide"] * 3
    _, rows, err = run_predict(capsys, "--model", calibrated_folder, *files, "--target-far", "0.1")
    assert "dev false-acceptance rate <= 0.1 (threshold 0.8)" in err
    assert all(row["decision"] == ("bonafide" if row["score"] > 0.8 else "spoof") for row in rows)


def test_table_and_csv_output_and_an_uncalibrated_model(model_folder, tmp_path, capsys):
    path = write(tmp_path / "x.wav", segment(20))
    assert cli.main(["predict", "--model", str(model_folder), str(path), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    (row,) = list(csv.DictReader(io.StringIO(out)))
    assert row["path"] == str(path) and row["llr"] == "-" and row["decision"] == "-"
    assert "no decisions: the model has no calibration" in err
    assert cli.main(["predict", "--model", str(model_folder), str(path), "--threshold", "0"]) == 0
    header, line = capsys.readouterr().out.splitlines()
    assert header.split() == ["path", "score", "llr", "decision", "windows", "seconds", "note"]
    assert line.split()[0] == str(path) and line.split()[3] in ("bonafide", "spoof")
    assert cli.main(["predict", "--model", str(model_folder), str(path), "--target-far", "0.01"]) == 2
    assert "--target-far needs the dev scores of a calibration" in capsys.readouterr().err


def test_short_long_tiny_and_nan_files_are_said_for_what_they_are(model_folder, tmp_path, capsys):
    short = write(tmp_path / "short.wav", segment(3, seconds=0.1))
    long = write(tmp_path / "long.wav", segment(4, seconds=60.0))
    tiny = write(tmp_path / "tiny.wav", segment(5)[:1])
    broken = segment(6)
    broken[100] = np.nan
    nan = write(tmp_path / "nan.wav", broken)
    code, rows, _ = run_predict(capsys, "--model", model_folder, short, long, tiny, nan, "--long-audio", "first")
    by_name = {row["path"].rsplit("/", 1)[-1]: row for row in rows}
    assert code == 1  # two files could not be scored; the others were
    assert "0.10 s repeated to the model's 4 s window" in by_name["short.wav"]["notes"]
    assert "only the first 4 s of 60.00 s scored (--long-audio first)" in by_name["long.wav"]["notes"]
    assert np.isfinite(by_name["short.wav"]["score"]) and np.isfinite(by_name["long.wav"]["score"])
    assert by_name["tiny.wav"]["score"] is None and "only 1 samples" in by_name["tiny.wav"]["error"]
    assert by_name["nan.wav"]["score"] is None and "NaN or infinite samples" in by_name["nan.wav"]["error"]
