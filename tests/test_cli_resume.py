"""`darts-jax train` resumed as a user would: the saved settings stand in for the flags not given, a
changed setting is refused by name, a longer run is allowed and recorded, and bad paths get messages."""
import json
import subprocess
import sys

import numpy as np
import pytest

from darts_jax import cli

GENOTYPE = ("Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('avg_pool_3x3', 0), ('skip_connect', 2), "
            "('avg_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 3), ('max_pool_3x3', 4)], "
            "normal_concat=range(2, 6), reduce=[('skip_connect', 0), ('skip_connect', 1), ('avg_pool_3x3', 0), "
            "('skip_connect', 2), ('avg_pool_3x3', 1), ('skip_connect', 0), ('skip_connect', 3), "
            "('max_pool_3x3', 4)], reduce_concat=range(2, 6))")


def _train(corpus, workdir, *flags):
    return cli.main(["train", "--data", str(corpus), "--workdir", str(workdir), "--workers", "2", "--quiet",
                     *flags])


@pytest.fixture(scope="module")
def first_run(tiny_corpus, tmp_path_factory):  # noqa: F811
    workdir = tmp_path_factory.mktemp("resume") / "run"
    assert _train(tiny_corpus, workdir, "--layers", "1", "--init-channels", "4", "--num-samples", "2048",
                  "--batch-size", "4", "--epochs", "1", "--steps-per-epoch", "2", "--lr", "0.005", "--lr-min", "0.001",
                  "--seed", "3", "--genotype", GENOTYPE) == 0
    return workdir


def test_a_resumed_run_keeps_its_settings_and_may_run_longer(first_run, tiny_corpus, capsys):  # noqa: F811
    before = json.loads((first_run / "config.json").read_text())
    capsys.readouterr()
    assert _train(tiny_corpus, first_run, "--epochs", "2") == 0
    after = json.loads((first_run / "config.json").read_text())
    assert after["loop"]["epochs"] == 2
    after["loop"]["epochs"] = 1
    assert after == before  # lr, size, genotype, seed: the run's own, not the defaults
    epochs = [json.loads(line) for line in (first_run / "epochs.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in epochs] == [0, 1]


def test_a_changed_setting_on_resume_is_refused_by_name(first_run, tiny_corpus, capsys):  # noqa: F811
    config_before = (first_run / "config.json").read_text()
    capsys.readouterr()
    assert _train(tiny_corpus, first_run, "--lr", "0.01", "--mask") == 2
    err = capsys.readouterr().err
    assert "keeps the settings it started with" in err
    assert "optim.lr (--lr): the run has 0.005, this command gives 0.01" in err
    assert "model.mask (--mask): the run has False, this command gives True" in err
    assert (first_run / "config.json").read_text() == config_before


def test_nonsense_settings_are_refused_before_anything_runs(tiny_corpus, tmp_path, capsys):  # noqa: F811
    for flags, message in ((["--epochs", "0"], "epochs (--epochs): 0 must be at least 1"),
                           (["--keep-checkpoints", "0"], "keep_checkpoints (--keep-checkpoints): 0 must be at least 1"),
                           (["--checkpoint-every", "0"], "checkpoint_every (--checkpoint-every): 0 must be at least 1"),
                           (["--log-every", "0"], "log_every (--log-every): 0 must be at least 1"),
                           (["--seed", "-1"], "seed (--seed): -1 must be at least 0")):
        assert _train(tiny_corpus, tmp_path / "run", *flags) == 2
        assert message in capsys.readouterr().err
    assert cli.main(["search", "--data", str(tiny_corpus), "--workdir", str(tmp_path / "s"), "--epochs", "3",
                     "--warmup-epochs", "3"]) == 2
    assert "α/β are never trained" in capsys.readouterr().err
    assert not (tmp_path / "run").exists() and not (tmp_path / "s").exists()


def test_a_workdir_that_is_a_file_is_refused(tiny_corpus, tmp_path, capsys):  # noqa: F811
    path = tmp_path / "notes.txt"
    path.write_text("mine")
    assert _train(tiny_corpus, path, "--layers", "1", "--init-channels", "4", "--epochs", "1") == 2
    assert "is a file; give a folder" in capsys.readouterr().err
    assert path.read_text() == "mine"


def test_score_into_a_closed_pipe_ends_quietly(tmp_path):
    # Far more report than a pipe buffers (64 KiB): one attack per spoof trial.
    scores = tmp_path / "many_scores.txt"
    scores.write_text("".join(f"U{i} {'-' if i % 2 else f'A{i:05d}'} {'bonafide' if i % 2 else 'spoof'} {i / 10}\n"
                              for i in range(4000)))
    shell = f"{sys.executable} -m darts_jax score --cm-scores {scores} --json | head -n 1"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("pooled: EER") and done.stdout.count("\n") == 1
    assert done.stderr == ""


def test_evaluate_best_scores_the_lowest_dev_eer_epoch_and_says_so(first_run, tiny_corpus, tmp_path, capsys):  # noqa: F811
    epochs = [json.loads(line) for line in (first_run / "epochs.jsonl").read_text().splitlines()]
    least = min(record["dev_eer_percent"] for record in epochs)
    lowest = [record for record in epochs if record["dev_eer_percent"] == least][-1]  # ties: the later epoch
    out = tmp_path / "scores.txt"
    assert cli.main(["evaluate", "--workdir", str(first_run), "--data", str(tiny_corpus), "--partition", "dev",
                     "--checkpoint", "best", "--out", str(out), "--batch-size", "4"]) == 0
    companion = json.loads((tmp_path / "scores.txt.json").read_text())
    assert companion["checkpoint"] == "best" and companion["step"] == lowest["step"]
    assert "lowest dev_eer_percent" in companion["rule"]
    assert companion["summary"]["dev_eer_percent"] == lowest["dev_eer_percent"]
    # Scoring dev with that checkpoint gives back the dev EER the run logged for it.
    capsys.readouterr()
    assert cli.main(["score", "--cm-scores", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["eer_percent"] == \
        pytest.approx(lowest["dev_eer_percent"], abs=1e-9)
    assert cli.main(["evaluate", "--workdir", str(first_run), "--data", str(tiny_corpus), "--checkpoint", "soon",
                     "--out", str(tmp_path / "x.txt")]) == 2
    assert "--checkpoint: 'soon' must be last, best or a step number" in capsys.readouterr().err


def test_evaluate_trim_silence_scores_the_files_as_if_trimmed_on_disk(first_run, tiny_corpus, tmp_path):  # noqa: F811
    import shutil

    import soundfile as sf

    from darts_jax.data.audio import load_audio, speech_bounds
    from darts_jax.data.protocols import load_partition
    from darts_jax.spoofing.scores import read_cm_scores

    trimmed_corpus = shutil.copytree(tiny_corpus, tmp_path / "LA")
    changed = 0
    for utt in load_partition(trimmed_corpus, "dev"):
        start, stop = speech_bounds(load_audio(utt.path))
        samples, rate = sf.read(utt.path, dtype="int16")
        changed += (start, stop) != (0, samples.size)
        sf.write(utt.path, samples[start:stop], rate, format="FLAC", subtype="PCM_16")
    assert changed  # SynthSpoof has leading and trailing silence to trim

    def evaluate(data, out, *flags):
        assert cli.main(["evaluate", "--workdir", str(first_run), "--data", str(data), "--partition", "dev",
                         "--out", str(out), "--batch-size", "4", *flags]) == 0
        return read_cm_scores(out)

    flagged = evaluate(tiny_corpus, tmp_path / "flagged.txt", "--trim-silence")
    on_disk = evaluate(trimmed_corpus, tmp_path / "on_disk.txt")
    plain = evaluate(tiny_corpus, tmp_path / "plain.txt")
    assert list(flagged.utt_ids) == list(on_disk.utt_ids)
    np.testing.assert_allclose(flagged.scores, on_disk.scores, rtol=1e-5, atol=1e-6)
    assert not np.allclose(flagged.scores, plain.scores)
    assert json.loads((tmp_path / "flagged.txt.json").read_text())["trim_silence"] is True
