"""`darts-jax params`: the parameter counts of spec §1.1 and §2.4 from the command line."""
from darts_jax import cli


def _last_line(capsys):
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_params_of_published_genotype(capsys):
    assert cli.main(["params", "--genotype", "pcdarts-lfcc", "--layers", "4", "--init-channels", "16"]) == 0
    assert _last_line(capsys) == "147274"


def test_params_of_supernet(capsys):
    assert cli.main(["params", "--supernet", "--layers", "4", "--init-channels", "16"]) == 0
    assert _last_line(capsys) == "408874"


def test_params_rejects_unknown_genotype(capsys):
    assert cli.main(["params", "--genotype", "no-such-genotype"]) == 2
    assert "no-such-genotype" in capsys.readouterr().err
