"""`darts-jax make-synthetic-faces --kind presentation`: writes a loadable corpus and never overwrites another."""
import numpy as np

from darts_jax.cli import main
from darts_jax.data.synthfaces.presentation import (
    PresentationCorpusConfig, build_presentation_corpus, load_presentation_corpus)


def test_make_synthetic_faces_writes_the_corpus_and_refuses_another(tmp_path, capsys):
    args = ["make-synthetic-faces", "--kind", "presentation", "--out", str(tmp_path), "--train-per-class", "3",
            "--eval-per-class", "2", "--seed", "4"]
    assert main(args) == 0
    expected = build_presentation_corpus(PresentationCorpusConfig(seed=4, train_per_class=3, eval_per_class=2))
    np.testing.assert_array_equal(load_presentation_corpus(tmp_path)["test_cross"]["image"],
                                  expected["test_cross"]["image"])
    before = (tmp_path / "presentation.npz").read_bytes()
    assert main(args[:-1] + ["5"]) == 2
    assert "not overwritten" in capsys.readouterr().err
    assert (tmp_path / "presentation.npz").read_bytes() == before
