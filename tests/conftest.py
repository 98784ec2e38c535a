"""Test-session settings.

Tests run torch single-threaded: the networks in tests are small, and OpenMP threads competing
with DataLoader workers or other processes on a 2-core machine slow small convolutions down
by an order of magnitude.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)
