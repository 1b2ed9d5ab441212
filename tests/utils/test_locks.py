import os
import signal
import subprocess
import sys
import time

import pytest

from mmdigits_keras.cli import main
from mmdigits_keras.utils.locks import claim, lock_path

HOLD = """
import sys, time
from mmdigits_keras.utils.locks import claim
with claim(sys.argv[1], what="run directory"):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_another_process(path):
    """A real second process holding the claim of `path` (until killed)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def _one_line_refusal(capsys, code, holder):
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and err.startswith("mmdigits: error: "), err
    assert f"in use by pid {holder.pid} " in err and "HOLD" not in err, err


def test_a_second_writer_is_refused_at_once_naming_the_holder(tiny_fusion_run, tmp_path, capsys):
    data, run = tiny_fusion_run
    holders = []
    try:
        for args, path in (
            (["train", "--data", str(data), "--out", str(tmp_path / "run"), "--epochs", "1"], tmp_path / "run"),
            (["tune", "--data", str(data), "--out", str(tmp_path / "search"), "--max-trials", "1", "--epochs", "1"],
             tmp_path / "search"),
            (["submit", "--model", str(run), "--data", str(data), "--out", str(tmp_path / "sub.csv")],
             tmp_path / "sub.csv"),
        ):
            holder = hold_in_another_process(path)
            holders.append(holder)
            started = time.monotonic()
            _one_line_refusal(capsys, main(args), holder)
            assert time.monotonic() - started < 5  # refused before any data is read or trained
            assert not path.exists()
    finally:
        for holder in holders:
            holder.kill()
            holder.wait()


def test_a_killed_holders_lock_is_taken_over_with_a_message(tmp_path, caplog):
    out = tmp_path / "run"
    holder = hold_in_another_process(out)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert lock_path(out).exists()  # the record a killed process leaves
    with claim(out, what="run directory") as stale:
        assert stale["pid"] == holder.pid
    assert f"took over the run directory from pid {holder.pid} " in caplog.text
    assert not lock_path(out).exists()  # a claim that ends removes its lock file
    caplog.clear()
    with claim(out):
        assert "took over" not in caplog.text  # nothing to take over after a clean end


def test_claims_of_one_path_exclude_each_other_within_a_process_too(tmp_path):
    with claim(tmp_path / "x"):
        with pytest.raises(ValueError, match=f"in use by pid {os.getpid()} "):
            with claim(tmp_path / "x"):
                pass
        with claim(tmp_path / "y"):  # another path is free
            pass
