"""Safe stops: the first signal asks for a stop after the step in flight (and says so), a second Ctrl-C
aborts at once, and the previous handlers come back."""
import os
import signal

import pytest

from darts_jax.engine.signals import StopRequest


def test_first_signal_asks_to_stop_and_says_a_second_ctrl_c_aborts(capsys):
    before = signal.getsignal(signal.SIGINT)
    stop = StopRequest()
    with stop.installed():
        assert not stop
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop and stop.signal_name == "SIGTERM"
        assert "stopping after the step in flight" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt, match="second SIGINT"):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_sigterm_does_not_abort():
    stop = StopRequest()
    with stop.installed():
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler repeating itself: still the safe stop
        assert stop.signal_name == "SIGTERM"
