"""The tiny SynthSpoof corpus the data tests share.

Test modules import the fixture; each import makes its own session fixture, but make_corpus reuses
a complete corpus, so the corpus is generated once per session.
"""
import pytest

from darts_jax.data.synthetic import make_corpus


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.getbasetemp() / "synthspoof_tiny", size="tiny", seed=0, workers=2)
