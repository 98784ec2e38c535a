"""Random numbers for datasets: one generator per process / DataLoader worker."""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import get_worker_info


class WorkerSeededRandom:
    """Mixin giving a dataset ``_generator()``; the dataset sets ``seed`` and ``photometric``.

    In a worker the generator is seeded from (``seed``, torch's worker seed = base seed + worker
    id), so workers differ from each other and between epochs (non-persistent workers draw a new
    base seed from torch's generator each epoch) and runs repeat under ``seed_everything``. In the
    main process it is seeded from ``seed``, or torch's initial seed when ``seed`` is None. A
    photometric augmentation with a ``reseed`` method is reseeded from the same stream.
    """

    seed: int | None
    photometric: object
    _rng: np.random.Generator | None = None
    _rng_owner: tuple[int, int] | None = None

    def _generator(self) -> np.random.Generator:
        info = get_worker_info()
        owner = (os.getpid(), info.id if info is not None else -1)
        if self._rng is None or self._rng_owner != owner:
            base = 0 if self.seed is None else int(self.seed)
            if info is not None:
                entropy = [base % 2**63, int(info.seed) % 2**63]
            elif self.seed is not None:
                entropy = [base % 2**63]
            else:
                entropy = [int(torch.initial_seed()) % 2**63]
            self._rng = np.random.default_rng(np.random.SeedSequence(entropy))
            self._rng_owner = owner
            reseed = getattr(self.photometric, "reseed", None)
            if callable(reseed):
                reseed(int(self._rng.integers(2**32)))
        return self._rng
