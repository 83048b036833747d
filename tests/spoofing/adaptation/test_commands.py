"""`darts-jax adapt-teacher` and `adapt` on a tiny manipulation corpus: the command path end to end."""
import json

import numpy as np
import pytest

from darts_jax.cli import main
from darts_jax.data.synthfaces.manipulation import make_manipulation_corpus


def test_adapt_teacher_then_adapt_scores_source_and_target_and_keeps_old_scores(tmp_path, capsys):
    make_manipulation_corpus(tmp_path / "faces", seed=0, per_kind=(48, 24))
    assert main(["adapt-teacher", "--data", str(tmp_path / "faces"), "--workdir", str(tmp_path / "teacher"),
                 "--epochs", "1"]) == 0
    run = ["adapt", "--teacher", str(tmp_path / "teacher"), "--data", str(tmp_path / "faces"), "--workdir",
           str(tmp_path / "ft"), "--method", "ft", "--epochs", "1", "--batch-size", "8", "--target-per-class", "16"]
    assert main(run) == 0
    scores = json.loads((tmp_path / "ft" / "scores.json").read_text())
    assert scores["forgetting"] == pytest.approx(scores["teacher"]["source_acc"] - scores["source_acc"])
    assert 0.0 <= scores["target_acc"] <= 100.0 and np.isfinite(scores["target_eer"])
    before = (tmp_path / "ft" / "scores.json").read_text()
    capsys.readouterr()
    assert main(run) == 2
    assert "scores.json exists; pass --restart" in capsys.readouterr().err
    assert (tmp_path / "ft" / "scores.json").read_text() == before
    assert main(run + ["--restart"]) == 0
    kept = list((tmp_path / "ft" / "previous-runs").glob("*/scores.json"))
    assert len(kept) == 1 and kept[0].read_text() == before
