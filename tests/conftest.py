"""Test-session settings.

Tests run torch single-threaded: the networks in tests are small, and OpenMP threads competing
with DataLoader workers or other processes on a 2-core machine slow small convolutions down
by an order of magnitude. Decisions the runs cache (the measured memory format) go to a folder
of the session, not the user's ~/.cache/posekit.
"""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
if "POSEKIT_CACHE" not in os.environ:
    os.environ["POSEKIT_CACHE"] = tempfile.mkdtemp(prefix="posekit-test-cache-")
    atexit.register(shutil.rmtree, os.environ["POSEKIT_CACHE"], True)

import torch  # noqa: E402

torch.set_num_threads(1)
