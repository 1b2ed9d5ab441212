import io
import sys
import types

import pytest

from mmdigits_keras.utils import progress
from mmdigits_keras.utils.progress import Eta, fit_verbosity, is_interactive, progress_bar


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_auto_verbosity_is_a_bar_on_a_terminal_and_one_line_per_epoch_in_a_log(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    assert not is_interactive() and fit_verbosity("auto") == 2
    monkeypatch.setattr(sys, "stdout", _Terminal())
    assert is_interactive() and fit_verbosity("auto") == 1
    assert fit_verbosity(0) == 0 and fit_verbosity(2) == 2


def test_a_notebook_kernel_counts_as_interactive(monkeypatch):
    monkeypatch.setattr(sys, "stdout", io.StringIO())
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    # ipykernel imported without a kernel running (nbclient imports it to start one): a log.
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: None))
    assert fit_verbosity("auto") == 2
    monkeypatch.setitem(sys.modules, "IPython", types.SimpleNamespace(get_ipython=lambda: object()))
    assert fit_verbosity("auto") == 1


def test_bad_verbosity_is_refused():
    with pytest.raises(ValueError, match="`verbose` must be one of"):
        fit_verbosity(3)


def test_progress_bar_draws_on_a_terminal_only(monkeypatch):
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    bar = progress_bar(3, unit="recording")
    assert bar.disable
    for _ in range(3):
        bar.update(1)
    bar.close()
    assert log.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress_bar(3, unit="recording")
    assert not bar.disable
    bar.update(3)
    bar.close()
    assert "recording" in terminal.getvalue()
    assert progress_bar(3, unit="recording", enabled=False).disable


def test_eta_paces_the_work_done_since_it_started(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    eta = Eta(5, unit="fold", initial=1)  # a resumed run: fold 1 was done before
    assert eta.describe(1) == "1 of 5 folds done in 00:00" and eta.seconds_left(1) is None
    clock[0] += 120.0  # two folds in two minutes
    assert eta.seconds_left(3) == 120.0
    assert eta.describe(3) == "3 of 5 folds done in 02:00, about 02:00 left"
    clock[0] += 3 * 3600
    assert eta.describe(5).startswith("5 of 5 folds done in 3:02:00, about 00:00 left")
