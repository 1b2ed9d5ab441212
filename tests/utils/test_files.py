import subprocess
import sys

from mmdigits_keras.utils.files import atomic_write


def test_atomic_write_removes_what_a_killed_writer_left_and_keeps_a_live_ones(tmp_path):
    path = tmp_path / "best.json"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f".best.tmp-{int(dead.stdout)}.json"  # a writer that died mid-write
    killed.write_text('{"cut')
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        writing = tmp_path / f".best.tmp-{live.pid}.json"  # a writer still at work
        writing.write_text("{")
        other = tmp_path / ".other.tmp-1.json"  # another file's
        other.write_text("{")
        atomic_write(path, lambda tmp: open(tmp, "w").write('{"a": 1}'))
        assert path.read_text() == '{"a": 1}' and not killed.exists() and writing.exists() and other.exists()
    finally:
        live.kill()
        live.wait()
