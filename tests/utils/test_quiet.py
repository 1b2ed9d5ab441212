import contextlib
import json
import logging
import os
import pty
import subprocess
import sys
import textwrap

import pytest

from mmdigits_keras import cli
from mmdigits_keras.utils import quiet
from mmdigits_keras.utils.quiet import TF_LOGS_ENV, is_native_log, native_logs_filtered

# Lines as TensorFlow 2.19-2.21 print them on this machine.
ONEDNN = (b"I0000 00:00:1796146639.027802    5506 port.cc:153] oneDNN custom operations are on. You may see "
          b"slightly different numerical results\n")
BANNER = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
THREADPOOL = (b"E0000 00:00:1796143404.886621    6090 node_def_util.cc:682] NodeDef mentions attribute "
              b"use_unbounded_threadpool which is not in the op definition\n")
OLD_STYLE = b"2025-07-01 12:00:00.000000: I tensorflow/core/util/port.cc:113] oneDNN custom operations are on.\n"


def test_tensorflow_notices_are_native_logs_but_real_errors_and_our_lines_are_not():
    features = (b"To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
                b"with the appropriate compiler flags.\n")
    int64 = (b"E0000 00:00:1796649450.078134   17696 util.cc:131] oneDNN supports DT_INT64 only on platforms with "
             b"AVX-512. Falling back to the default Eigen-based implementation if present.\n")
    for line in (ONEDNN, BANNER, THREADPOOL, OLD_STYLE, features, int64):
        assert is_native_log(line), line
    kept = [b"E0000 00:00:1796143404.886621    6090 cuda_dnn.cc:12] could not create cudnn handle\n",
            b"F0000 00:00:1796143404.886621    6090 check.cc:1] Check failed\n",
            b"mmdigits: error: data folder not found: nope\n",
            b"warning: validation holds out 1 of 3 speakers\n",
            b"Traceback (most recent call last):\n"]
    for line in kept:
        assert not is_native_log(line), line


def test_the_filter_drops_native_lines_keeps_the_rest_and_restores_stderr(capfd):
    with native_logs_filtered():
        for line in (BANNER, ONEDNN, b"mmdigits: error: kept\n", THREADPOOL, b"also kept\n"):
            os.write(2, line)
    os.write(2, ONEDNN)  # after the context: stderr is itself again
    assert capfd.readouterr().err == "mmdigits: error: kept\nalso kept\n" + ONEDNN.decode()
    with native_logs_filtered(enabled=False):
        os.write(2, ONEDNN)
    assert capfd.readouterr().err == ONEDNN.decode()


def test_pythons_own_stderr_bypasses_the_filter_and_stays_a_terminal(capfd, monkeypatch):
    with native_logs_filtered():
        print(ONEDNN.decode().strip(), file=sys.stderr)  # Python's writes are never dropped
    assert capfd.readouterr().err == ONEDNN.decode()
    # On a terminal, progress bars (tqdm on sys.stderr) still see one inside the context.
    primary, secondary = pty.openpty()
    saved = os.dup(2)
    os.dup2(secondary, 2)
    monkeypatch.setattr(sys, "stderr", open(2, "w", closefd=False))  # as a console script starts
    try:
        with native_logs_filtered():
            assert sys.stderr.isatty() and not os.isatty(2)
    finally:
        os.dup2(saved, 2)
        for fd in (saved, primary, secondary):
            os.close(fd)


def test_cli_output_starts_with_its_own_lines_unless_verbose(monkeypatch):
    # TF_CPP_MIN_LOG_LEVEL=0: TensorFlow prints every notice it has; the CLI still shows none.
    quiet = subprocess.run([sys.executable, "-m", "mmdigits_keras", "models", "model1"], capture_output=True,
                           text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert quiet.returncode == 0 and quiet.stdout.startswith("name"), quiet.stdout
    assert quiet.stderr == "", quiet.stderr
    # --verbose (either side of the command) turns the filter off; the filter itself is tested above.
    seen = []
    monkeypatch.setattr(cli, "native_logs_filtered", lambda enabled: seen.append(enabled) or contextlib.nullcontext())
    monkeypatch.setitem(cli.COMMANDS, "models", lambda args: 0)
    for argv in (["models", "--verbose"], ["--verbose", "models"], ["models"]):
        assert cli.main(argv) == 0
    assert seen == [False, False, True]


NOTEBOOK = textwrap.dedent("""
    import json, sys
    import mmdigits_keras as mk
    data, out = sys.argv[1], sys.argv[2]
    mk.build_model(depth=1)  # what the models layer needs of `data` is its constants only
    print(json.dumps(sorted(n for n in sys.modules if n.startswith("mmdigits_keras.data"))))
    run = mk.train(data, out=f"{out}/run", model="model1", epochs=1, finetune_epochs=1)
    mk.submit(run, data, f"{out}/s.csv")
""")


@pytest.mark.slow(12)
def test_importing_and_training_in_python_prints_no_tensorflow_line_and_models_load_no_data_code(tiny_kaggle,
                                                                                                 tmp_path):
    # As in a notebook or a script: no CLI, TensorFlow's own logging settings untouched.
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", TF_LOGS_ENV)}
    done = subprocess.run([sys.executable, "-c", NOTEBOOK, str(tiny_kaggle), str(tmp_path)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0 and done.stderr == "", done.stderr  # no absl, oneDNN or retracing line
    assert "val_accuracy: " in done.stdout and (tmp_path / "s.csv").is_file()  # Keras's progress lines stay
    # Building a model imported no data-loading code (Keras itself imports pandas).
    assert json.loads(done.stdout.splitlines()[0]) == ["mmdigits_keras.data", "mmdigits_keras.data.constants"]


def test_mmdigits_tf_logs_leaves_tensorflow_as_it_is(monkeypatch):
    # MMDIGITS_TF_LOGS=1: `quiet_tensorflow` (what `import mmdigits_keras` calls) changes nothing:
    # no log level, no filter on file descriptor 2 or on the tensorflow logger.
    monkeypatch.setattr(quiet, "_quieted", False)  # as in a fresh process; what this one's import did stays
    monkeypatch.setattr(quiet, "_QUIET", contextlib.ExitStack())
    monkeypatch.setenv(TF_LOGS_ENV, "1")
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL", raising=False)
    filters = list(logging.getLogger("tensorflow").filters)
    stderr = os.fstat(2)
    quiet.quiet_tensorflow()
    assert not quiet._quieted and "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    assert logging.getLogger("tensorflow").filters == filters and os.fstat(2) == stderr
    monkeypatch.delenv(TF_LOGS_ENV)  # without it, the same call quiets
    quiet.quiet_tensorflow()
    try:
        assert quiet._quieted and os.environ["TF_CPP_MIN_LOG_LEVEL"] == "2"
        assert len(logging.getLogger("tensorflow").filters) == len(filters) + 1 and os.fstat(2) != stderr
    finally:
        quiet.loud_tensorflow()
    assert logging.getLogger("tensorflow").filters == filters and os.fstat(2) == stderr
