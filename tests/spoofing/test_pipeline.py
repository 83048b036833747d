"""Trained models users can ship (issue item 8): export, evaluate --model and predict, on a tiny training run."""
import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest

import soundfile as sf

from darts_jax import cli
from darts_jax.data.protocols import load_partition
from darts_jax.engine.checkpoint import CheckpointError
from darts_jax.engine.config import with_fields
from darts_jax.spaces.pcdarts2d.config import ModelConfig
from darts_jax.spaces.pcdarts2d.genotype_text import load_genotype
from darts_jax.spoofing import pipeline
from darts_jax.spoofing.export import load_model
from darts_jax.spoofing.scores import cm_keys, read_cm_scores
from darts_jax.tasks.train import TrainConfig

CELL = "[('sep_conv_3x3', 0), ('skip_connect', 1), ('{pool}', 0), ('skip_connect', 2), ('avg_pool_3x3', 1), " \
       "('sep_conv_3x3', 0), ('skip_connect', 3), ('max_pool_3x3', 4)]"
GENOTYPE = (f"Genotype(normal={CELL.format(pool='max_pool_3x3')}, normal_concat=range(2, 6), "
            f"reduce={CELL.format(pool='max_pool_3x3')}, reduce_concat=range(2, 6))")
# Another network with the very same weight shapes.
OTHER_GENOTYPE = GENOTYPE.replace(f"reduce={CELL.format(pool='max_pool_3x3')}",
                                  f"reduce={CELL.format(pool='avg_pool_3x3')}")
# 4 s clips at 16 kHz, as the authors train: the tiny corpus has utterances both shorter and longer.
CONFIG = with_fields(TrainConfig(model=ModelConfig(layers=1, init_channels=4), genotype=GENOTYPE), batch_size=4,
                     epochs=1, steps_per_epoch=3, seed=3)


@pytest.fixture(scope="module")
def trained(tiny_corpus, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("trained")
    result = pipeline.run_train(CONFIG, tiny_corpus, workdir, monitor_dev=False, quiet=True, workers=2)
    assert result.step == 3
    return workdir


@pytest.fixture(scope="module")
def corpus_without_asv_scores(tiny_corpus, tmp_path_factory):  # noqa: F811
    """The tiny corpus less its ASV scores: with a handful of trials per attack the ASV can reject every
    spoof of one, and the min t-DCF is then undefined; metrics are tests/test_metrics.py's subject."""
    view = tmp_path_factory.mktemp("corpus_view")
    for entry in tiny_corpus.iterdir():
        if entry.name != pipeline.ASV_SCORES.split("/")[0]:
            (view / entry.name).symlink_to(entry)
    return view


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    return pipeline.export_trained(trained, tmp_path_factory.mktemp("exported") / "model")


def assert_trees_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for (path, a), b in zip(jax.tree_util.tree_leaves_with_path(actual), jax.tree.leaves(expected)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=jax.tree_util.keystr(path))


def test_export_writes_a_self_contained_model(trained, tmp_path, capsys):
    assert cli.main(["export", "--workdir", str(trained), "--out", str(tmp_path / "model")]) == 0
    assert f"model written to {tmp_path / 'model'}" in capsys.readouterr().out
    # Moved away from the run, the folder still holds everything.
    moved = tmp_path / "elsewhere"
    shutil.move(tmp_path / "model", moved)
    _, model, genotype, variables = load_model(moved)
    assert model == CONFIG.model
    assert genotype == load_genotype(GENOTYPE)
    _, _, trained_variables = pipeline.load_trained(trained)
    assert_trees_equal(variables, trained_variables)
    front_end = json.loads((moved / "model.json").read_text())["config"]["model"]
    assert (front_end["frontend"], front_end["num_samples"], front_end["sample_rate"]) == ("lfcc", 64000, 16000)


def test_export_refuses_a_non_empty_folder(trained, exported, capsys):
    before = sorted(p.relative_to(exported) for p in exported.rglob("*"))
    assert cli.main(["export", "--workdir", str(trained), "--out", str(exported)]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    assert sorted(p.relative_to(exported) for p in exported.rglob("*")) == before


def test_evaluate_and_predict_score_every_file_alike(corpus_without_asv_scores, exported, tmp_path, capsys):
    score_file = tmp_path / "scores.txt"
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(corpus_without_asv_scores),
                     "--partition", "eval", "--out", str(score_file), "--batch-size", "4"]) == 0
    assert f"scores written to {score_file}" in capsys.readouterr().out
    utterances = load_partition(corpus_without_asv_scores, "eval")
    scores = read_cm_scores(score_file)
    assert list(scores.utt_ids) == [u.utt_id for u in utterances]
    assert cm_keys(scores.labels) == ["bonafide" if u.label == 1 else "spoof" for u in utterances]
    by_length = sorted(utterances, key=lambda u: u.path.stat().st_size)
    chosen = by_length[:2] + by_length[len(by_length) // 2:][:1] + by_length[-2:]

    # --long-audio first: the training's first-4-s cut, as evaluate scores.
    assert cli.main(["predict", "--model", str(exported), "--format", "json", "--long-audio", "first"]
                    + [str(u.path) for u in chosen]) == 0
    printed = [(row["path"], row["score"]) for row in map(json.loads, capsys.readouterr().out.splitlines())]
    assert [path for path, _ in printed] == [str(u.path) for u in chosen]
    # Batches of 16 here and of 4 there: equal up to float rounding.
    expected = [scores.scores[list(scores.utt_ids).index(u.utt_id)] for u in chosen]
    np.testing.assert_allclose([float(score) for _, score in printed], expected, rtol=1e-5, atol=1e-6)


def test_predict_needs_an_exported_model(tiny_corpus, tmp_path, capsys):  # noqa: F811
    audio = load_partition(tiny_corpus, "eval")[0].path
    assert cli.main(["predict", "--model", str(tmp_path), str(audio)]) == 2
    assert "model.json not found" in capsys.readouterr().err


def test_resuming_training_with_another_genotype_is_refused(tiny_corpus, trained, tmp_path):  # noqa: F811
    workdir = shutil.copytree(trained, tmp_path / "run")
    genotype_file = (workdir / "genotype.json").read_text()
    with pytest.raises(CheckpointError, match="different architecture") as raised:
        pipeline.run_train(dataclasses.replace(CONFIG, genotype=OTHER_GENOTYPE), tiny_corpus, workdir,
                           monitor_dev=False, quiet=True, workers=2)
    assert [line.split(":")[0].strip() for line in str(raised.value).splitlines()[1:-1]] == ["genotype"]
    assert (workdir / "genotype.json").read_text() == genotype_file


# ------------------------------------------------------------------------ evaluate --corpus in each layout

def _eval_trials(corpus, count=6):
    """Bona fide and spoof trials of the tiny corpus's eval partition, alternating."""
    utterances = load_partition(corpus, "eval")
    bona = [u for u in utterances if u.label == 1][:count // 2]
    spoof = [u for u in utterances if u.label == 0][:count // 2]
    return [u for pair in zip(bona, spoof) for u in pair]


def _asvspoof2021_folder(root, track, trials, extra_audio=()):
    """`trials` in the ASVspoof 2021 layout: FLACs in ASVspoof2021_{track}_eval/flac, keys/{track}/CM."""
    flac = root / f"ASVspoof2021_{track}_eval" / "flac"
    flac.mkdir(parents=True)
    lines = []
    for i, utt in enumerate(trials):
        utt_id = f"{track}_E_{1000000 + i}"
        shutil.copy(utt.path, flac / f"{utt_id}.flac")
        key, attack = ("bonafide", "-") if utt.label == 1 else ("spoof", utt.attack)
        vocoder = " - - - -" if track == "DF" else ""
        lines.append(f"LA_0001 {utt_id} nocodec asvspoof {attack} {key} notrim eval{vocoder}")
    for utt_id in extra_audio:
        shutil.copy(trials[0].path, flac / f"{utt_id}.flac")
    keys = root / "keys" / track / "CM" / "trial_metadata.txt"
    keys.parent.mkdir(parents=True)
    keys.write_text("\n".join(lines) + "\n")
    return {f"{track}_E_{1000000 + i}": utt for i, utt in enumerate(trials)}


def _in_the_wild_folder(root, trials):
    root.mkdir()
    rows = ["file,speaker,label"]
    for i, utt in enumerate(trials):
        wave, rate = sf.read(utt.path, dtype="int16")
        sf.write(root / f"{i}.wav", wave, rate, subtype="PCM_16")
        rows.append(f"{i}.wav,Speaker {i},{'bona-fide' if utt.label == 1 else 'spoof'}")
    (root / "meta.csv").write_text("\n".join(rows) + "\n")
    return {str(i): utt for i, utt in enumerate(trials)}


@pytest.mark.parametrize("corpus", ["2021-la", "2021-df", "itw"])
def test_evaluate_scores_every_corpus_layout(corpus, corpus_without_asv_scores, exported, tmp_path, capsys):
    trials = _eval_trials(corpus_without_asv_scores)
    folder = tmp_path / "corpus"
    if corpus == "itw":
        by_id = _in_the_wild_folder(folder, trials)
    else:
        by_id = _asvspoof2021_folder(folder, corpus[-2:].upper(), trials)
    reference = tmp_path / "reference.txt"
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(corpus_without_asv_scores),
                     "--out", str(reference), "--batch-size", "4"]) == 0
    out = tmp_path / "scores.txt"
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(folder), "--corpus", corpus,
                     "--out", str(out), "--batch-size", "4"]) == 0
    capsys.readouterr()
    scores, expected = read_cm_scores(out), read_cm_scores(reference)
    assert sorted(scores.utt_ids) == sorted(by_id)
    expected_score = dict(zip(expected.utt_ids, expected.scores))
    for utt_id, label, score in zip(scores.utt_ids, scores.labels, scores.scores):
        utt = by_id[utt_id]
        assert label == utt.label
        # The same audio (WAV for In-the-Wild is the same samples), so the same score as in 2019 LA.
        assert score == pytest.approx(expected_score[utt.utt_id], rel=1e-5, abs=1e-6)
    assert cli.main(["score", "--cm-scores", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert result["bonafide_trials"] == 3 and result["spoof_trials"] == 3


def test_evaluate_refuses_a_key_that_does_not_match_the_audio(corpus_without_asv_scores, exported, tmp_path,
                                                                capsys):
    folder = tmp_path / "corpus"
    _asvspoof2021_folder(folder, "LA", _eval_trials(corpus_without_asv_scores), extra_audio=["LA_E_9999999"])
    (folder / "ASVspoof2021_LA_eval" / "flac" / "LA_E_1000000.flac").unlink()
    out = tmp_path / "scores.txt"
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(folder), "--corpus", "2021-la",
                     "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "the key does not match the audio: 1 of its 6 utterance(s) have no flac file (first: LA_E_1000000)" in err
    assert "1 flac file(s) are not in it (first: LA_E_9999999)" in err
    assert not out.exists()


def test_export_stablehlo_from_a_training_run(trained, exported, tmp_path, capsys):
    from darts_jax.spoofing.predict import load_scorer

    out = tmp_path / "portable"
    assert cli.main(["export", "--workdir", str(trained), "--format", "stablehlo", "--out", str(out)]) == 0
    capsys.readouterr()
    waves = (0.1 * np.random.default_rng(2).standard_normal((3, CONFIG.model.num_samples))).astype(np.float32)
    np.testing.assert_allclose(load_scorer(out, 3).forward(waves), load_scorer(exported, 3).forward(waves),
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------------------ faults a user hits

def test_export_onto_a_file_is_refused_and_the_file_kept(trained, tmp_path, capsys):
    target = tmp_path / "model.txt"
    target.write_text("mine")
    assert cli.main(["export", "--workdir", str(trained), "--out", str(target)]) == 2
    assert "is a file; a model is a folder" in capsys.readouterr().err
    assert target.read_text() == "mine"


@pytest.mark.parametrize("damage, message", [
    (lambda m: (m / "model.json").write_text('{"format": "darts_jax-model-1", "config": '), "model.json is damaged"),
    (lambda m: (m / "model.json").write_text('{"genotype": {}}'), "model.json is damaged (KeyError"),
    (lambda m: shutil.rmtree(m / "variables"), "the weights cannot be read"),
])
def test_a_damaged_model_folder_is_named(exported, tmp_path, damage, message, capsys):
    model = shutil.copytree(exported, tmp_path / "model")
    damage(model)
    audio = tmp_path / "a.wav"
    sf.write(audio, (np.random.default_rng(0).standard_normal(8000) * 3000).astype(np.int16), 16000)
    assert cli.main(["predict", "--model", str(model), str(audio)]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_run_workdir_given_as_a_model_says_what_to_do(trained, tiny_corpus, tmp_path, capsys):  # noqa: F811
    assert cli.main(["evaluate", "--model", str(trained), "--data", str(tiny_corpus), "--out",
                     str(tmp_path / "s.txt")]) == 2
    assert "is a run's workdir, not a model folder: pass it as --workdir" in capsys.readouterr().err


def test_evaluate_refuses_an_existing_out_before_scoring(exported, corpus_without_asv_scores, tmp_path, capsys,
                                                         monkeypatch):
    existing = tmp_path / "scores.txt"
    existing.write_text("keep me")
    scored = []
    monkeypatch.setattr(pipeline.evaluate, "evaluate", lambda *args, **kwargs: scored.append(1))
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(corpus_without_asv_scores),
                     "--out", str(existing)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert not scored and existing.read_text() == "keep me"
    assert cli.main(["evaluate", "--model", str(exported), "--data", str(corpus_without_asv_scores),
                     "--out", str(tmp_path)]) == 2
    assert "it is a folder; give a file name" in capsys.readouterr().err and not scored


def test_a_run_refuses_a_corpus_with_bad_audio_before_it_starts(tiny_corpus, tmp_path):  # noqa: F811
    corpus = shutil.copytree(tiny_corpus, tmp_path / "LA")
    bad = load_partition(corpus, "train")[3].path
    wave, rate = sf.read(bad, dtype="float32")
    wave[50] = np.nan
    sf.write(bad.with_suffix(".wav"), wave, rate, subtype="FLOAT")
    bad.unlink()
    bad.with_suffix(".wav").rename(bad.with_suffix(".flac.tmp"))
    bad.with_suffix(".flac.tmp").rename(bad)  # a WAV with a NaN, under the protocol's .flac name
    with pytest.raises(ValueError, match=r"1 audio file\(s\) this run would read cannot be used") as raised:
        pipeline.run_train(CONFIG, corpus, tmp_path / "run", monitor_dev=False, quiet=True, workers=2)
    assert str(bad) in str(raised.value) and "check-data" in str(raised.value)
    assert not (tmp_path / "run").exists()
