import subprocess
import sys

import numpy as np
import psutil
import pytest


@pytest.mark.slow(10)
def test_a_workers_peak_memory_is_its_own_not_its_parents():
    """A trial worker retires on its own peak RSS; Linux's ru_maxrss would hand it the peak of
    the (large) search process that started it, and every worker would retire at once."""
    ballast = np.ones(250_000_000)  # 2 GB in this process, touched
    parent_mib = psutil.Process().memory_info().rss / 2**20
    assert parent_mib > 1900
    done = subprocess.run([sys.executable, "-c", "from mmdigits_keras.tuning.trial import peak_rss_mib; "
                           "print(peak_rss_mib())"], capture_output=True, text=True, check=True, timeout=300)
    child_mib = float(done.stdout.strip().splitlines()[-1])
    del ballast
    assert 50 < child_mib < parent_mib - 1000, (child_mib, parent_mib)
