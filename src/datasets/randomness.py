"""Random numbers for datasets: reproducible per sample and epoch, or one stream per worker.

Training loaders use ``EpochSeededSampler``: it yields ``(index, epoch)`` keys, and the dataset
draws the augmentation of that sample from a generator seeded by ``(seed, epoch, index)``. The
random numbers of a sample therefore do not depend on the number of workers, on the process, or
on whether the run was interrupted and resumed: a resumed run sees exactly the samples an
uninterrupted one would. Plain integer indices (notebooks, direct indexing) use one stream per
process / worker instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DistributedSampler, get_worker_info

_PER_ITEM = ("item",)


class WorkerSeededRandom:
    """Mixin giving a dataset ``_generator()``; the dataset sets ``seed`` and ``photometric``.

    ``__getitem__`` starts with ``index = self._begin_item(key)``. With an ``(index, epoch)`` key
    the generator of that item is seeded from (``seed``, epoch, index). With a plain index, in a
    worker the generator is seeded from (``seed``, torch's worker seed = base seed + worker id),
    so workers differ from each other and between epochs; in the main process it is seeded from
    ``seed``, or torch's initial seed when ``seed`` is None. A photometric augmentation with a
    ``reseed`` method is reseeded from the same generator.
    """

    seed: int | None
    photometric: object
    _rng: np.random.Generator | None = None
    _rng_owner: tuple | None = None

    def _begin_item(self, key: Any) -> int:
        """Index of the item ``key`` names; an ``(index, epoch)`` key seeds this item's generator."""
        if isinstance(key, (tuple, list)):
            index, epoch = int(key[0]), int(key[1])
            base = 0 if self.seed is None else int(self.seed)
            self._rng = np.random.default_rng(np.random.SeedSequence([base % 2**63, epoch, index]))
            self._rng_owner = _PER_ITEM
            self._reseed_photometric()
            return index
        if self._rng_owner == _PER_ITEM:
            self._rng, self._rng_owner = None, None
        return int(key)

    def _generator(self) -> np.random.Generator:
        if self._rng_owner == _PER_ITEM and self._rng is not None:
            return self._rng
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
            self._reseed_photometric()
        return self._rng

    def _reseed_photometric(self) -> None:
        reseed = getattr(self.photometric, "reseed", None)
        if callable(reseed):
            reseed(int(self._rng.integers(2**32)))


class EpochSeededSampler(DistributedSampler):
    """Shuffled training order that yields ``(index, epoch)`` keys (see ``WorkerSeededRandom``).

    The order is a function of (seed, epoch) alone, as in ``DistributedSampler``; under
    ``torch.distributed`` each process takes its share (the order padded to a multiple of the
    number of processes). Lightning keeps this sampler in DDP (it is a ``DistributedSampler``) and
    calls ``set_epoch`` at every epoch, also after resuming.
    """

    def __init__(self, dataset: Any, *, seed: int = 0, shuffle: bool = True) -> None:
        distributed = dist.is_available() and dist.is_initialized()
        super().__init__(
            dataset,
            num_replicas=dist.get_world_size() if distributed else 1,
            rank=dist.get_rank() if distributed else 0,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self._skip = 0

    def skip_next(self, count: int) -> None:
        """Leave out the first ``count`` indices of this process in the next pass: an epoch resumed
        part-way goes on with exactly the samples (and their augmentations) it had not seen."""
        self._skip = max(0, int(count))

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        epoch = int(self.epoch)
        skip, self._skip = self._skip, 0
        for position, index in enumerate(super().__iter__()):
            if position >= skip:
                yield (int(index), epoch)
