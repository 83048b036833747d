"""The audio-visual commands end to end on a tiny SynthAV: corpus, frozen backbones and their feature cache,
then search, train and evaluate with --space fusion, a refused resume, and files that are never replaced."""
import json

import numpy as np
import pytest

from darts_jax.cli import main
from darts_jax.spaces.fusion.config import AUDIO_TAPS
from darts_jax.spoofing.av_pipeline import DEV_SELECTION
from darts_jax.spoofing.av_protocol import ProtocolConfig, run_model


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("av") / "synthav"
    assert main(["make-synthetic-av", "--out", str(root), "--size", "tiny"]) == 0
    assert main(["pretrain-backbones", "--data", str(root), "--widths", "4,8,8", "--epochs", "1",
                 "--batch-size", "8"]) == 0
    return root


def test_pretraining_caches_the_taps_and_refuses_to_replace_them(corpus, capsys):
    meta = json.loads((corpus / "features" / "backbones.json").read_text())
    assert meta["taps"] == ["v1", "v2", "v3", "v4", "a1", "a2", "a3", "a4"]
    # grid 4: each stage map keeps 4 x 4 cells (video) or 4 bands (audio) in its channels.
    assert meta["tap_channels"] == [4 * 16, 8 * 16, 8 * 16, 8, 4 * 4, 8 * 4, 8 * 4, 8]
    before = (corpus / "features" / "backbones.npz").read_bytes()
    assert main(["pretrain-backbones", "--data", str(corpus), "--epochs", "1"]) == 2
    assert "nothing was overwritten" in capsys.readouterr().err
    assert (corpus / "features" / "backbones.npz").read_bytes() == before


def test_search_train_evaluate_with_the_fusion_space(corpus, tmp_path, capsys):
    search, train = tmp_path / "search", tmp_path / "train"
    flags = ["--data", str(corpus), "--channels", "8", "--batch-size", "4", "--quiet"]
    assert main(["search", "--space", "fusion", "--workdir", str(search), "--epochs", "1", "--sampler",
                 "gumbel_st_mc", "--sampler-samples", "3", *flags]) == 0
    config = json.loads((search / "config.json").read_text())
    assert config["space"] == "fusion" and config["relaxation"]["sampler"] == "gumbel_st_mc"
    assert config["model"]["channels"] == 8 and config["model"]["tap_channels"][0] == 64
    genotype = json.loads((search / "genotype.json").read_text())
    assert len(genotype["steps"]) == 2
    # Resuming (no --space: the saved run's) with another data selection is refused, naming the file.
    assert main(["search", "--workdir", str(search), "--epochs", "2", "--categories", "RVRA,LS", *flags]) == 2
    assert "fusion_data.json" in capsys.readouterr().err
    assert main(["train", "--space", "fusion", "--workdir", str(train), "--epochs", "1",
                 "--genotype", str(search / "genotype.json"), *flags]) == 0
    assert main(["evaluate", "--workdir", str(train), "--data", str(corpus)]) == 0
    lines = (train / "scores-eval.txt").read_text().splitlines()
    assert len(lines) == 20 and {line.split()[1] for line in lines} == {"RVRA", "FVRA", "RVFA", "FVFA", "LS"}
    provenance = json.loads((train / "scores-eval.txt.json").read_text())
    reported = provenance["metrics"]["LS"]["auc"]
    scores = np.array([float(line.split()[3]) for line in lines])
    kinds = np.array([line.split()[1] for line in lines])
    real, fake = scores[kinds == "RVRA"], scores[kinds == "LS"]
    assert reported == pytest.approx(np.mean((real[:, None] > fake[None, :]) + 0.5 * (real[:, None] == fake[None, :])))
    assert (train / "scores-eval.roc.png").is_file()
    assert main(["evaluate", "--workdir", str(train), "--data", str(corpus)]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_the_protocol_scores_the_epoch_of_best_dev_auc(corpus, tmp_path):
    config = ProtocolConfig(task="lipsync", search_epochs=1, train_epochs=3, channels=8, batch_size=4,
                            sampler_samples=2, dropout=0.3, weight_decay=1e-3)
    result = run_model("audio", 0, corpus, tmp_path, config)
    train_dir = tmp_path / "seed0" / "audio" / "train"
    epochs = [json.loads(line) for line in (train_dir / "epochs.jsonl").read_text().splitlines()]
    aucs = [e["dev_auc"] for e in epochs]
    assert all(e[DEV_SELECTION] == pytest.approx(1 - e["dev_auc"]) for e in epochs)
    best = max(range(len(aucs)), key=lambda i: (aucs[i], i))  # ties go to the later epoch
    assert result["selected"]["epoch"] == best + 1  # epochs completed when it was saved
    assert result["selected"]["dev"]["dev_auc"] == pytest.approx(aucs[best])
    assert set(result["taps_used"]) <= set(AUDIO_TAPS)
    saved = json.loads((train_dir / "config.json").read_text())
    assert saved["model"]["dropout"] == 0.3 and saved["optim"]["weight_decay"] == 1e-3
    assert saved["loop"]["select_by"] == DEV_SELECTION
    with pytest.raises(ValueError, match="select"):
        ProtocolConfig(select="eval")
