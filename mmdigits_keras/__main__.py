"""``python -m mmdigits_keras`` is the ``mmdigits`` command."""

import sys

from mmdigits_keras.cli import main

sys.exit(main())
